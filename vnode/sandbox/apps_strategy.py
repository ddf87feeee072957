"""apps/v1 Deployment rules: SetDefaults_Deployment, the pod template's defaults, validation, and generation.

The sandbox runs no Deployment controller and no ReplicaSets: a Deployment is stored, validated, defaulted and
served (watch, status and scale subresources), but no pods are created for it and its status stays as the last
writer left it (`{}` after create), so `kubectl rollout status` never completes. vnode itself never needs one:
in a real cluster the Deployment in deploy/ runs vnode, the sandbox only has to accept it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vnode.sandbox import field_errors as fe
from vnode.sandbox.pod_strategy import container_causes, default_pod_spec
from vnode.sandbox.selectors import SelectorError, match_label_selector_object
from vnode.sandbox.strategy import Cause, Obj, Strategy

_STRATEGY_TYPES = ("Recreate", "RollingUpdate")
_PERCENT = re.compile(r"^[0-9]+%$")
_PERCENT_MESSAGE = ("a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
                    "'93%', regex used for validation is '[0-9]+%')")
# LabelSelectorAsSelector's operators and how labels.Requirement.String() spells them.
_SELECTOR_OPS = {"In": " in ", "NotIn": " notin ", "Exists": "", "DoesNotExist": "!"}


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """labels.Selector.String() of a metav1.LabelSelector: requirements sorted by key, comma-separated."""
    if not selector:
        return ""
    parts: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op = str(expr.get("key", "")), _SELECTOR_OPS.get(str(expr.get("operator", "")))
        if op is None:
            return "<invalid>"
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        parts.append((key, f"!{key}" if op == "!" else key if not op else f"{key}{op}({values})"))
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


def _go_int_or_string(value: Any) -> str:
    if isinstance(value, str):
        return f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:{fe.go_quote(value)}}}'
    return f'intstr.IntOrString{{Type:0, IntVal:{value if isinstance(value, int) else 0}, StrVal:""}}'


def _nonnegative(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and value < 0:
        return [fe.invalid(path, str(value), "must be greater than or equal to 0")]
    return []


def _status_causes(status: Obj) -> list[Cause]:
    """ValidateDeploymentStatus (status is empty on create and kept from the stored object on a spec update)."""
    causes: list[Cause] = []
    counts = {field: value if isinstance(value := status.get(field), int) else 0 for field in (
        "observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
        "unavailableReplicas", "collisionCount")}
    for field, value in counts.items():
        causes += _nonnegative(f"status.{field}", value)
    for field in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        if counts[field] > counts["replicas"]:
            causes.append(fe.invalid(f"status.{field}", str(counts[field]), "cannot be greater than status.replicas"))
    if counts["availableReplicas"] > counts["readyReplicas"]:
        causes.append(fe.invalid("status.availableReplicas", str(counts["availableReplicas"]),
                                 "cannot be greater than readyReplicas"))
    return causes


class DeploymentStrategy(Strategy):
    keep_status_on_create = False

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}
        obj["metadata"]["generation"] = 1
        self._default(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        self._default(new)
        meta, old_meta = new["metadata"], old["metadata"]
        # Clients cannot set the generation; template changes bump it, and so do annotation changes, because
        # annotations are copied from a Deployment to its ReplicaSets.
        generation = old_meta.get("generation", 1)
        if new.get("spec") != old.get("spec") or meta.get("annotations") != old_meta.get("annotations"):
            generation += 1
        meta["generation"] = generation

    @staticmethod
    def _default(deployment: Obj) -> None:
        """apps/v1 SetDefaults_Deployment, then the pod template's own defaults."""
        spec = deployment.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        template = spec.setdefault("template", {})
        default_pod_spec(template.setdefault("spec", {}))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = super().validate(obj) + _nonnegative("spec.replicas", spec.get("replicas"))
        causes += self._selector_causes(spec)
        causes += self._strategy_causes(spec.get("strategy") or {})
        causes += _nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
        causes += _nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
        deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
        if isinstance(deadline, int):
            causes += _nonnegative("spec.progressDeadlineSeconds", deadline)
            if deadline <= min_ready:
                causes.append(fe.invalid("spec.progressDeadlineSeconds", str(deadline),
                                         "must be greater than minReadySeconds"))
        return causes + _status_causes(obj.get("status") or {})

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        selector = (new.get("spec") or {}).get("selector")
        # apps/v1 made the selector immutable: the ReplicaSets and pods it owns are found through it.
        if selector != (old.get("spec") or {}).get("selector"):
            shown = fe.go_label_selector(selector) if isinstance(selector, dict) else "null"
            causes.append(fe.invalid("spec.selector", shown, "field is immutable"))
        return causes

    @staticmethod
    def _selector_causes(spec: Obj) -> list[Cause]:
        selector, template = spec.get("selector"), spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels")
        causes: list[Cause] = []
        if selector is None:
            causes.append(fe.required("spec.selector"))
        elif not isinstance(selector, dict):
            return [fe.invalid("spec.selector", fe.go_value(selector), "invalid label selector")]
        elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(fe.invalid("spec.selector", fe.go_label_selector(selector),
                                     "empty selector is invalid for deployment"))
            selector = {}  # an empty selector selects everything: the template check below passes
        try:
            # A missing selector matches nothing, so the template check fails too, as in kube-apiserver.
            matches = selector == {} or match_label_selector_object(selector, labels or {})
        except SelectorError:
            shown = fe.go_label_selector(selector or {})
            return [*causes, fe.invalid("spec.selector", shown, "invalid label selector")]
        if not matches:
            causes.append(fe.invalid("spec.template.metadata.labels", fe.go_string_map(labels),
                                     "`selector` does not match template `labels`"))
        pod_spec = template.get("spec") or {}
        causes += container_causes(pod_spec, "spec.template.spec")
        restart = pod_spec.get("restartPolicy", "Always")
        if restart != "Always":
            causes.append(fe.not_supported("spec.template.spec.restartPolicy", fe.go_quote(restart), ["Always"]))
        if pod_spec.get("activeDeadlineSeconds") is not None:
            causes.append(fe.forbidden("spec.template.spec.activeDeadlineSeconds",
                                       "activeDeadlineSeconds in ReplicaSet is not Supported"))
        return causes

    @staticmethod
    def _strategy_causes(strategy: Obj) -> list[Cause]:
        kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
        if kind == "Recreate":
            if rolling is not None:
                return [fe.forbidden("spec.strategy.rollingUpdate",
                                     "may not be specified when strategy `type` is 'Recreate'")]
            return []
        if kind != "RollingUpdate":
            pointer = "(*apps.RollingUpdateDeployment)(nil)" if rolling is None else "&apps.RollingUpdateDeployment{}"
            shown = f"apps.DeploymentStrategy{{Type:{fe.go_quote(str(kind))}, RollingUpdate:{pointer}}}"
            return [fe.not_supported("spec.strategy", shown, _STRATEGY_TYPES)]
        return _rolling_update_causes(rolling if isinstance(rolling, dict) else {})


def _rolling_update_causes(rolling: Obj) -> list[Cause]:
    """ValidateRollingUpdateDeployment: non-negative ints or percentages, not both zero, unavailable ≤ 100%."""
    causes: list[Cause] = []
    amounts: dict[str, int] = {}
    for field in ("maxUnavailable", "maxSurge"):
        path, value = f"spec.strategy.rollingUpdate.{field}", rolling.get(field)
        if isinstance(value, str):
            if not _PERCENT.match(value):
                causes.append(fe.invalid(path, _go_int_or_string(value), _PERCENT_MESSAGE))
            amounts[field] = int(value[:-1]) if _PERCENT.match(value) else 0
        elif isinstance(value, int) and not isinstance(value, bool):
            causes += _nonnegative(path, value)
            amounts[field] = value
        else:
            causes.append(fe.invalid(path, _go_int_or_string(value), "must be an integer or percentage (e.g '5%')"))
    if amounts.get("maxUnavailable") == 0 and amounts.get("maxSurge") == 0:
        causes.append(fe.invalid("spec.strategy.rollingUpdate.maxUnavailable",
                                 _go_int_or_string(rolling.get("maxUnavailable")), "may not be 0 when `maxSurge` is 0"))
    unavailable = rolling.get("maxUnavailable")
    if isinstance(unavailable, str) and _PERCENT.match(unavailable) and int(unavailable[:-1]) > 100:
        causes.append(fe.invalid("spec.strategy.rollingUpdate.maxUnavailable", _go_int_or_string(unavailable),
                                 "must not be greater than 100%"))
    return causes
