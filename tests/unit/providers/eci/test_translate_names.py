"""translate.py: the group's name and tags, and finding the pod again from the tags."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.providers.eci.translate_pods import NODE, REF, pod, under, wire
from vnode.providers.base import PodRef
from vnode.providers.eci.translate import (
    TAG_CLUSTER,
    TAG_NAMESPACE,
    TAG_NODE,
    TAG_POD,
    TAG_UID,
    group_name,
    group_tags,
    ref_from_tags,
)

# ContainerGroupName as ECI validates it.
VALID_NAME = re.compile(r"^[a-z0-9][-a-z0-9]{0,126}[a-z0-9]$")


def test_group_name_is_namespace_and_name_then_a_hash() -> None:
    name = group_name("c1", PodRef("ci", "agent-7", "uid-1"))
    assert VALID_NAME.match(name) and re.fullmatch(r"ci-agent-7-[0-9a-f]{10}", name)


def test_plan_sends_the_group_name() -> None:
    assert wire(pod())["ContainerGroupName"] == group_name("c1", REF)


def test_the_same_pod_in_two_clusters_gets_two_names() -> None:
    assert group_name("c1", REF) != group_name("c2", REF)


def test_a_recreated_pod_with_a_new_uid_gets_a_new_name() -> None:
    assert group_name("c1", PodRef("ns", "pod", "uid-1")) != group_name("c1", PodRef("ns", "pod", "uid-2"))


def test_long_dotted_names_are_made_valid_and_cut_to_128() -> None:
    name = group_name("c1", PodRef("n" * 63, "web.example." + "x" * 240, "uid-1"))
    assert len(name) == 128 and VALID_NAME.match(name) and "web-example-" in name


def test_a_name_without_letters_or_digits_is_the_hash_alone() -> None:
    assert re.fullmatch(r"[0-9a-f]{10}", group_name("c1", PodRef("", "..", "uid-1")))


def test_tags_carry_cluster_node_namespace_pod_and_uid() -> None:
    tags = under(wire(pod()), "Tag.")
    pairs = {tags[f"{n}.Key"]: tags[f"{n}.Value"] for n in range(1, len(tags) // 2 + 1)}
    assert pairs == {TAG_CLUSTER: "c1", TAG_NODE: NODE, TAG_NAMESPACE: "ns", TAG_POD: "pod", TAG_UID: "uid-1"}


def test_ref_from_tags_round_trips() -> None:
    assert ref_from_tags(group_tags("c1", NODE, REF)) == REF


def test_ref_from_tags_is_none_for_a_group_without_vnode_tags() -> None:
    assert ref_from_tags({TAG_CLUSTER: "c1", TAG_NODE: NODE, "owner": "someone"}) is None


def test_a_long_pod_name_tag_is_cut_to_128_and_the_uid_kept() -> None:
    ref = PodRef("ns", "p" * 253, "uid-1")
    found = ref_from_tags(group_tags("c1", NODE, ref))
    assert found == PodRef("ns", "p" * 128, "uid-1")


@given(cluster=st.text(max_size=70), namespace=st.text(max_size=300), name=st.text(max_size=300),
       uid=st.text(max_size=200), node=st.text(min_size=1, max_size=300))
def test_any_pod_yields_a_valid_name_and_tags_within_ecis_limits(cluster: str, namespace: str, name: str, uid: str,
                                                                  node: str) -> None:
    ref = PodRef(namespace, name, uid)
    assert VALID_NAME.match(group_name(cluster, ref))
    tags = group_tags(cluster, node, ref)
    assert all(len(k) <= 64 and not k.startswith(("acs:", "aliyun")) for k in tags)
    assert all(len(v) <= 128 for v in tags.values())
