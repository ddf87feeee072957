"""Pod defaulting and admission as the sandbox applies them on create."""

from __future__ import annotations

from typing import Any

from vnode.sandbox.pod_strategy import SERVICE_ACCOUNT_MOUNT, PodStrategy, qos_class


def created(spec: dict[str, Any]) -> dict[str, Any]:
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": spec}
    PodStrategy(lambda ns, name: True).prepare_for_create(pod)
    return pod


def test_defaults_fill_what_kubelets_read() -> None:
    """restartPolicy, grace period, pull policy and Pending status are defaulted."""
    pod = created({"containers": [{"name": "c", "image": "busybox"}]})
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 30
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # untagged means :latest
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_service_account_token_is_mounted_in_every_container() -> None:
    """The ServiceAccount admission adds a projected kube-api-access volume and mounts it."""
    pod = created({"initContainers": [{"name": "i", "image": "x:1"}], "containers": [{"name": "c", "image": "x:1"}]})
    volume = next(v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    sources = [next(iter(s)) for s in volume["projected"]["sources"]]
    assert sources == ["serviceAccountToken", "configMap", "downwardAPI"]
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        assert {"name": volume["name"], "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT} in container[
            "volumeMounts"]


def test_automount_false_adds_no_token() -> None:
    """automountServiceAccountToken: false leaves volumes alone."""
    pod = created({"automountServiceAccountToken": False, "containers": [{"name": "c", "image": "x:1"}]})
    assert "volumes" not in pod["spec"]


def test_default_tolerations_for_unreachable_nodes() -> None:
    """DefaultTolerationSeconds: 300 s for not-ready and unreachable, NoExecute."""
    pod = created({"containers": [{"name": "c", "image": "x:1"}]})
    keys = {(t["key"], t["tolerationSeconds"]) for t in pod["spec"]["tolerations"]}
    assert keys == {("node.kubernetes.io/not-ready", 300), ("node.kubernetes.io/unreachable", 300)}


def test_qos_class() -> None:
    """Equal requests and limits everywhere is Guaranteed; some requests is Burstable."""
    guaranteed = {"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                                "limits": {"cpu": "1", "memory": "1Gi"}}}]}
    burstable = {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}
    assert qos_class(guaranteed) == "Guaranteed"
    assert qos_class(burstable) == "Burstable"


def test_graceful_delete_only_for_bound_running_pods() -> None:
    """Unbound or finished pods are deleted at once; bound ones wait their grace period."""
    strategy = PodStrategy(lambda ns, name: True)
    bound = {"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 45}, "status": {"phase": "Running"}}
    assert strategy.grace_period_seconds(bound, None) == 45
    assert strategy.grace_period_seconds(bound, 5) == 5
    assert strategy.grace_period_seconds({"spec": {}, "status": {}}, None) == 0
    assert strategy.grace_period_seconds({**bound, "status": {"phase": "Succeeded"}}, None) == 0
