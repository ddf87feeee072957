"""SpecShapes: the spec's billed shape worked out once per pod template, never confused between templates."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from vnode.cost.shape import SpecShapes, shape_from_spec

TEMPLATE: dict[str, Any] = {
    "metadata": {"name": "app-1-abcde", "annotations": {}},
    "spec": {"containers": [{"name": "jnlp", "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
                            {"name": "build", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
             "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "500m"}}}]}}


def _variant(change: str) -> dict[str, Any]:
    pod = copy.deepcopy(TEMPLATE)
    spec = pod["spec"]
    if change == "request":
        spec["containers"][0]["resources"]["requests"]["cpu"] = "200m"
    elif change == "limit":
        spec["containers"][1]["resources"]["limits"]["memory"] = "2Gi"
    elif change == "gpu":
        spec["containers"][1]["resources"]["limits"]["nvidia.com/gpu"] = "1"
    elif change == "init":
        spec["initContainers"][0]["resources"]["requests"]["cpu"] = "4"
    elif change == "container":
        spec["containers"].append({"name": "extra"})
    elif change == "category":
        pod["metadata"]["annotations"]["k8s.aliyun.com/eci-compute-category"] = "economy"
    return pod


def test_pods_of_one_template_share_one_shape() -> None:
    shapes = SpecShapes()
    first, second = copy.deepcopy(TEMPLATE), copy.deepcopy(TEMPLATE)
    second["metadata"]["name"] = "app-2-fghjk"
    assert shapes.of(first) is shapes.of(second)
    assert shapes.of(second) == shape_from_spec(second)


@pytest.mark.parametrize("change", ["request", "limit", "gpu", "init", "container", "category"])
def test_a_pod_that_differs_in_what_is_billed_gets_its_own_shape(change: str) -> None:
    shapes = SpecShapes()
    shapes.of(TEMPLATE)
    pod = _variant(change)
    assert shapes.of(pod) == shape_from_spec(pod) != shape_from_spec(TEMPLATE)
