"""Server-side printing of apps/v1 Deployments and RBAC bindings, as kube-apiserver's printers do.

Roles and ClusterRoles have no printer in kube-apiserver: they get the generic NAME / CREATED AT table from
`tables.py`. Cells only: the Table envelope is built by `tables.to_table`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vnode.sandbox.apps_strategy import selector_string
from vnode.sandbox.table_cells import AGE, NAME, Cell, Printer, age_of, column, dig, mappings, name_of, text

_DEPLOYMENT_COLUMNS = [
    NAME,
    column("Ready", "Number of the pod with ready state"),
    column("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired "
                         "template spec."),
    column("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this "
                        "deployment."),
    AGE,
    column("Containers", "Names of each container in the template.", priority=1),
    column("Images", "Images referenced by each container in the template.", priority=1),
    column("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the "
                       "ones affected by this deployment.", priority=1),
]


def _count(obj: Mapping[str, Any], *path: str) -> int:
    value = dig(obj, *path)
    return value if isinstance(value, int) else 0


def _print_deployment(deployment: Mapping[str, Any], now: datetime) -> list[Cell]:
    containers = mappings(deployment, "spec", "template", "spec", "containers")
    selector = dig(deployment, "spec", "selector")
    return [
        name_of(deployment),
        # READY is ready/desired; a Deployment without replicas has had them defaulted to 1 by the server.
        f"{_count(deployment, 'status', 'readyReplicas')}/{_count(deployment, 'spec', 'replicas')}",
        _count(deployment, "status", "updatedReplicas"), _count(deployment, "status", "availableReplicas"),
        age_of(deployment, now),
        ",".join(text(c, "name") for c in containers), ",".join(text(c, "image") for c in containers),
        selector_string(selector if isinstance(selector, Mapping) else None),
    ]


def _binding_columns(kind: str) -> list[dict[str, Any]]:
    ref_doc = ("RoleRef can only reference a ClusterRole in the global namespace." if kind == "clusterRoleBinding"
               else "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.")
    return [NAME, column("Role", ref_doc), AGE,
            column("Users", f"Users in the {kind}", priority=1),
            column("Groups", f"Groups in the {kind}", priority=1),
            column("ServiceAccounts", f"ServiceAccounts in the {kind}", priority=1)]


def _print_binding(binding: Mapping[str, Any], now: datetime) -> list[Cell]:
    subjects = mappings(binding, "subjects")

    def named(kind: str) -> str:
        # rbac.SubjectsStrings: service accounts are shown as namespace/name.
        return ", ".join(f"{text(s, 'namespace')}/{text(s, 'name')}" if kind == "ServiceAccount" else text(s, "name")
                         for s in subjects if s.get("kind") == kind)

    role = f"{text(binding, 'roleRef', 'kind')}/{text(binding, 'roleRef', 'name')}"
    return [name_of(binding), role, age_of(binding, now), named("User"), named("Group"), named("ServiceAccount")]


PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Printer]] = {
    ("apps", "deployments"): (_DEPLOYMENT_COLUMNS, _print_deployment),
    ("rbac.authorization.k8s.io", "rolebindings"): (_binding_columns("roleBinding"), _print_binding),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (_binding_columns("clusterRoleBinding"), _print_binding),
}
