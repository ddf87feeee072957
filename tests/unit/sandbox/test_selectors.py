"""Label, field and node-affinity selectors select what kube-apiserver and the scheduler select."""

from __future__ import annotations

from typing import Any

import pytest

from vnode.sandbox.selectors import (
    SELECTABLE_FIELDS,
    SelectorError,
    field_path,
    match_label_selector_object,
    node_selector_matches,
    node_selector_term_matches,
    parse_field_selector,
    parse_label_selector,
)

# --- label selector strings ------------------------------------------------------------------------------


def test_empty_label_selector_matches_everything() -> None:
    """An empty (or blank) selector selects every object, labelled or not."""
    assert parse_label_selector("")({})
    assert parse_label_selector("   ")({"a": "b"})


@pytest.mark.parametrize("text", ["app=web", "app==web", "app = web"])
def test_equality_selects_equal_value(text: str) -> None:
    """`=` and `==` are the same operator and tolerate surrounding whitespace."""
    match = parse_label_selector(text)
    assert match({"app": "web"})
    assert not match({"app": "db"})
    assert not match({})


def test_not_equal_also_matches_absent_label() -> None:
    """`!=` selects objects whose label differs or is missing."""
    match = parse_label_selector("app!=web")
    assert match({"app": "db"})
    assert match({})
    assert not match({"app": "web"})


def test_in_selects_any_listed_value() -> None:
    """`in (a,b)` selects either value, and only when the label exists."""
    match = parse_label_selector("tier in (front, back)")
    assert match({"tier": "back"})
    assert not match({"tier": "middle"})
    assert not match({})


def test_notin_matches_absent_label() -> None:
    """`notin` excludes listed values but selects objects without the label."""
    match = parse_label_selector("tier notin (front)")
    assert match({})
    assert match({"tier": "back"})
    assert not match({"tier": "front"})


def test_bare_key_requires_label_and_bang_forbids_it() -> None:
    """`k` means the label exists (any value), `!k` that it does not."""
    assert parse_label_selector("gpu")({"gpu": ""})
    assert not parse_label_selector("gpu")({})
    assert parse_label_selector("!gpu")({})
    assert not parse_label_selector("!gpu")({"gpu": "x"})


def test_comma_is_a_conjunction() -> None:
    """Requirements separated by commas must all hold."""
    match = parse_label_selector("app=web,env in (prod),!canary")
    assert match({"app": "web", "env": "prod"})
    assert not match({"app": "web", "env": "prod", "canary": "1"})
    assert not match({"app": "web"})


def test_empty_value_after_equals_selects_empty_label() -> None:
    """`k=` compares against the empty string, so it needs the label present with no value."""
    match = parse_label_selector("k=")
    assert match({"k": ""})
    assert not match({})


def test_keywords_in_value_position_are_plain_values() -> None:
    """`in` and `notin` may be used as values and keys."""
    assert parse_label_selector("in in (in, notin)")({"in": "notin"})


def test_greater_than_compares_integers() -> None:
    """`k>5` compares the label as an integer and fails on non-numbers."""
    match = parse_label_selector("replicas>5")
    assert match({"replicas": "10"})
    assert not match({"replicas": "5"})
    assert not match({"replicas": "ten"})


def test_prefixed_keys_are_accepted() -> None:
    """Keys may carry a DNS subdomain prefix."""
    assert parse_label_selector("app.kubernetes.io/name=vnode")({"app.kubernetes.io/name": "vnode"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app in", "unable to parse requirement: found '' expected: '('"),
        ("app in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("=web", "found '=', expected: !, identifier, or 'end of string'"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a>x", "the value must be an integer"),
    ],
)
def test_malformed_label_selector_raises_apiserver_message(text: str, message: str) -> None:
    """Syntax errors are rejected with apimachinery's parse message."""
    with pytest.raises(SelectorError) as err:
        parse_label_selector(text)
    assert message in str(err.value)


def test_invalid_label_key_is_rejected() -> None:
    """A key that is not a qualified name is a validation error naming the key."""
    with pytest.raises(SelectorError, match='Invalid value: "-app": name part must consist of'):
        parse_label_selector("-app=web")


def test_invalid_label_value_is_rejected() -> None:
    """A value that is not a valid label value is rejected."""
    with pytest.raises(SelectorError, match=r'values\[0\]\[app\]: Invalid value: "-web": a valid label'):
        parse_label_selector("app in (-web)")


def test_selector_error_is_a_value_error() -> None:
    """SelectorError subclasses ValueError so callers can treat it as bad input."""
    assert issubclass(SelectorError, ValueError)


# --- structured label selectors --------------------------------------------------------------------------


def test_structured_selector_combines_match_labels_and_expressions() -> None:
    """matchLabels and matchExpressions are ANDed."""
    selector = {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]},
                                     {"key": "gpu", "operator": "DoesNotExist"}]}
    assert match_label_selector_object(selector, {"app": "web", "env": "prod"})
    assert not match_label_selector_object(selector, {"app": "web", "env": "dev"})
    assert not match_label_selector_object(selector, {"app": "web", "gpu": "1"})


def test_structured_selector_exists_and_in() -> None:
    """Exists needs the key; In needs one of the values."""
    selector = {"matchExpressions": [{"key": "zone", "operator": "Exists"},
                                     {"key": "tier", "operator": "In", "values": ["a", "b"]}]}
    assert match_label_selector_object(selector, {"zone": "z1", "tier": "b"})
    assert not match_label_selector_object(selector, {"tier": "b"})


def test_empty_structured_selector_matches_all_and_null_matches_none() -> None:
    """`{}` selects everything while a missing selector selects nothing."""
    assert match_label_selector_object({}, {"a": "b"})
    assert not match_label_selector_object(None, {"a": "b"})


def test_structured_selector_rejects_unknown_operator() -> None:
    """Operators other than In/NotIn/Exists/DoesNotExist are invalid."""
    with pytest.raises(SelectorError, match='"Gt" is not a valid label selector operator'):
        match_label_selector_object({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
                                    {})


def test_structured_selector_rejects_in_without_values() -> None:
    """`In` with an empty value list is invalid."""
    with pytest.raises(SelectorError, match="values set can't be empty"):
        match_label_selector_object({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, {})


# --- field selectors -------------------------------------------------------------------------------------

POD: dict[str, Any] = {
    "metadata": {"name": "build-1", "namespace": "ci"},
    "spec": {"nodeName": "vnode-1", "restartPolicy": "Never", "schedulerName": "default-scheduler",
             "serviceAccountName": "builder"},
    "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]},
}


def test_field_selector_on_pod_node_name() -> None:
    """The kubelet's `spec.nodeName=<node>` selects its own pods."""
    assert parse_field_selector("", "pods", "spec.nodeName=vnode-1")(POD)
    assert not parse_field_selector("", "pods", "spec.nodeName=other")(POD)


def test_field_selector_double_equals_and_not_equals() -> None:
    """`==` equals `=`, and `!=` negates."""
    assert parse_field_selector("", "pods", "status.phase==Running")(POD)
    assert parse_field_selector("", "pods", "status.phase!=Succeeded")(POD)
    assert not parse_field_selector("", "pods", "status.phase!=Running")(POD)


def test_field_selector_terms_are_anded() -> None:
    """Comma-separated terms must all hold."""
    match = parse_field_selector("", "pods",
                                 "metadata.namespace=ci,status.podIP=10.0.0.5,spec.restartPolicy=Never")
    assert match(POD)
    assert not parse_field_selector("", "pods", "metadata.namespace=ci,metadata.name=x")(POD)


def test_missing_field_compares_as_empty_string() -> None:
    """An absent field reads as "" so `f=` matches it and `f!=` does not."""
    assert parse_field_selector("", "pods", "status.nominatedNodeName=")(POD)
    assert not parse_field_selector("", "pods", "status.nominatedNodeName!=")(POD)


def test_host_network_defaults_to_false() -> None:
    """spec.hostNetwork selects as "false" when unset and "true" when set."""
    assert parse_field_selector("", "pods", "spec.hostNetwork=false")(POD)
    host = {**POD, "spec": {**POD["spec"], "hostNetwork": True}}
    assert parse_field_selector("", "pods", "spec.hostNetwork=true")(host)


def test_empty_field_selector_matches_everything() -> None:
    """No terms means no filtering."""
    assert parse_field_selector("", "configmaps", "")({})


def test_field_selector_value_escapes() -> None:
    r"""`\,` `\=` and `\\` stand for the literal characters in a value."""
    obj = {"metadata": {"name": "a,b=c\\d"}}
    assert parse_field_selector("", "configmaps", r"metadata.name=a\,b\=c\\d")(obj)


def test_field_selector_rejects_bad_escape() -> None:
    """An unknown escape sequence is invalid."""
    with pytest.raises(SelectorError, match=r"invalid escape sequence: \\x"):
        parse_field_selector("", "pods", r"metadata.name=a\x")


def test_field_selector_rejects_term_without_operator() -> None:
    """A term with no operator cannot be understood."""
    with pytest.raises(SelectorError, match="can't understand 'metadata.name'"):
        parse_field_selector("", "pods", "metadata.name")


def test_unsupported_pod_field_uses_apiserver_message() -> None:
    """Fields outside the kind's selectable set are rejected as the apiserver does."""
    with pytest.raises(SelectorError, match="^field label not supported: spec.containers$"):
        parse_field_selector("", "pods", "spec.containers=x")


def test_kind_without_custom_fields_accepts_only_metadata() -> None:
    """ConfigMaps take metadata.name/namespace only, with the default conversion's message."""
    assert parse_field_selector("", "configmaps", "metadata.namespace=ci")({"metadata": {"namespace": "ci"}})
    with pytest.raises(SelectorError, match='"data.x" is not a known field selector'):
        parse_field_selector("", "configmaps", "data.x=1")


def test_node_unschedulable_selects_as_bool_string() -> None:
    """spec.unschedulable is "false" unless cordoned."""
    assert parse_field_selector("", "nodes", "spec.unschedulable=false")({"metadata": {"name": "n"}})
    assert parse_field_selector("", "nodes", "spec.unschedulable=true")({"spec": {"unschedulable": True}})


def test_cluster_scoped_node_rejects_namespace_field() -> None:
    """Node's conversion func accepts metadata.name but not metadata.namespace."""
    with pytest.raises(SelectorError, match="field label not supported: metadata.namespace"):
        parse_field_selector("", "nodes", "metadata.namespace=")


def test_secret_type_and_csr_signer_are_selectable() -> None:
    """Secrets select on type; CSRs on spec.signerName."""
    assert parse_field_selector("", "secrets", "type=Opaque")({"type": "Opaque"})
    csr = {"spec": {"signerName": "kubernetes.io/kubelet-serving"}}
    assert parse_field_selector("certificates.k8s.io", "certificatesigningrequests",
                                "spec.signerName=kubernetes.io/kubelet-serving")(csr)


EVENT: dict[str, Any] = {
    "metadata": {"name": "build-1.abc", "namespace": "ci"},
    "involvedObject": {"kind": "Pod", "name": "build-1", "namespace": "ci", "uid": "u1"},
    "reason": "Started", "type": "Normal", "reportingComponent": "vnode", "source": {"component": "kubelet"},
}


def test_core_event_fields() -> None:
    """Core events select on involvedObject.*, reason, type and source (source.component)."""
    match = parse_field_selector("", "events",
                                 "involvedObject.kind=Pod,involvedObject.name=build-1,source=kubelet")
    assert match(EVENT)
    assert parse_field_selector("", "events", "reportingComponent=vnode,type=Normal")(EVENT)


def test_event_source_falls_back_to_reporting_component() -> None:
    """`source` reads the reporting controller when source.component is empty."""
    event = {**EVENT, "source": {}}
    assert parse_field_selector("", "events", "source=vnode")(event)


def test_events_k8s_io_fields_map_onto_stored_core_event() -> None:
    """regarding.* and reportingController are evaluated against involvedObject.* and reportingComponent."""
    match = parse_field_selector("events.k8s.io", "events",
                                 "regarding.kind=Pod,regarding.uid=u1,reportingController=vnode,reason=Started")
    assert match(EVENT)


def test_events_k8s_io_rejects_core_field_names() -> None:
    """The events.k8s.io API does not accept the core spelling involvedObject.*."""
    with pytest.raises(SelectorError, match="field label not supported: involvedObject.name"):
        parse_field_selector("events.k8s.io", "events", "involvedObject.name=x")


def test_selectable_field_table_is_extendable() -> None:
    """Adding a getter to the table makes a new field label selectable."""
    SELECTABLE_FIELDS[("", "testthings")] = {"spec.color": field_path("spec.color")}
    try:
        assert parse_field_selector("", "testthings", "spec.color=red")({"spec": {"color": "red"}})
    finally:
        del SELECTABLE_FIELDS[("", "testthings")]


# --- node affinity ---------------------------------------------------------------------------------------

NODE: dict[str, Any] = {"metadata": {"name": "vnode-1", "labels": {"type": "virtual-kubelet", "cpus": "64"}}}


def test_term_with_in_and_exists_matches() -> None:
    """matchExpressions In and Exists hold against node labels."""
    term = {"matchExpressions": [{"key": "type", "operator": "In", "values": ["virtual-kubelet"]},
                                 {"key": "cpus", "operator": "Exists"}]}
    assert node_selector_term_matches(term, NODE)


def test_term_notin_and_does_not_exist() -> None:
    """NotIn rejects a listed value; DoesNotExist rejects a present key."""
    assert not node_selector_term_matches(
        {"matchExpressions": [{"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]}]}, NODE)
    assert not node_selector_term_matches(
        {"matchExpressions": [{"key": "cpus", "operator": "DoesNotExist"}]}, NODE)


def test_term_gt_lt_compare_integers() -> None:
    """Gt and Lt compare the label value as an integer."""
    assert node_selector_term_matches(
        {"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["32"]}]}, NODE)
    assert not node_selector_term_matches(
        {"matchExpressions": [{"key": "cpus", "operator": "Lt", "values": ["32"]}]}, NODE)


def test_term_with_non_integer_gt_matches_nothing() -> None:
    """A Gt value that is not an integer makes the term invalid, and invalid terms match nothing."""
    assert not node_selector_term_matches(
        {"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["many"]}]}, NODE)


def test_match_fields_on_node_name() -> None:
    """matchFields metadata.name In/NotIn selects by node name."""
    assert node_selector_term_matches(
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["vnode-1"]}]}, NODE)
    assert not node_selector_term_matches(
        {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["vnode-1"]}]}, NODE)


def test_match_fields_rejects_other_operators() -> None:
    """matchFields supports only In and NotIn with one value."""
    assert not node_selector_term_matches(
        {"matchFields": [{"key": "metadata.name", "operator": "Exists"}]}, NODE)


def test_empty_term_matches_nothing() -> None:
    """A term without requirements selects no node."""
    assert not node_selector_term_matches({}, NODE)
    assert not node_selector_term_matches({"matchExpressions": [], "matchFields": []}, NODE)


def test_terms_are_ored() -> None:
    """One satisfied term is enough; no terms at all match no node."""
    miss = {"matchExpressions": [{"key": "type", "operator": "In", "values": ["kubelet"]}]}
    hit = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["vnode-1"]}]}
    assert node_selector_matches([miss, hit], NODE)
    assert not node_selector_matches([miss], NODE)
    assert not node_selector_matches([], NODE)
