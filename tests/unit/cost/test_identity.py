"""Which build a pod belongs to: the Jenkins kubernetes-plugin's annotations and label, custom keys, nothing."""

from __future__ import annotations

from typing import Any

from vnode.cost.identity import (
    SOURCE_CUSTOM,
    SOURCE_JENKINS,
    SOURCE_JENKINS_LABEL,
    BuildRef,
    IdentityRules,
    identify,
    parse_run_url,
)


def _pod(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "app-42-abcde-fghjk-lmnpq", "namespace": "ci", "uid": "u-1",
                         "labels": labels or {}, "annotations": annotations or {}},
            "spec": {"nodeName": "vnode-eci", "containers": [{"name": "jnlp"}]}}


def test_run_url_annotation_names_job_path_and_build() -> None:
    """`runUrl` (relative to Jenkins) gives the folder path of the job and the build number."""
    identity = identify(_pod(annotations={"runUrl": "job/team/job/app/42/",
                                          "buildUrl": "https://ci.example/job/team/job/app/42/"}), provider="eci")
    assert identity.build == BuildRef(job="team/app", build="42", url="https://ci.example/job/team/job/app/42/",
                                      source=SOURCE_JENKINS)


def test_identity_carries_namespace_name_uid_node_and_provider() -> None:
    identity = identify(_pod(labels={"team": "web"}), provider="docker")
    assert (identity.namespace, identity.name, identity.uid, identity.node, identity.provider) == (
        "ci", "app-42-abcde-fghjk-lmnpq", "u-1", "vnode-eci", "docker")
    assert identity.labels == {"team": "web"}


def test_build_url_alone_is_read_past_a_context_path() -> None:
    """Without runUrl, the absolute buildUrl still names the job, even under a Jenkins context path."""
    build = identify(_pod(annotations={"buildUrl": "https://host/jenkins/job/app/7/"}), provider="eci").build
    assert (build.job, build.build) == ("app", "7")


def test_multibranch_names_are_url_decoded() -> None:
    assert parse_run_url("job/repo/job/feature%2Flogin/3/") == ("repo/feature/login", "3")


def test_jenkins_label_is_the_lossy_fallback() -> None:
    """`jenkins/label` = sanitize(fullName#N)-xxxxx: `/` and `#` became `_`."""
    build = identify(_pod(labels={"jenkins/label": "team_app_14-pfb9q"}), provider="eci").build
    assert build == BuildRef(job="team_app", build="14", source=SOURCE_JENKINS_LABEL)


def test_static_template_label_names_no_build() -> None:
    assert identify(_pod(labels={"jenkins/label": "maven"}), provider="eci").build == BuildRef()


def test_custom_keys_win_over_jenkins_and_labels_over_annotations() -> None:
    rules = IdentityRules(job_keys=("tekton.dev/pipeline",), build_keys=("tekton.dev/pipelineRun",))
    pod = _pod(labels={"tekton.dev/pipeline": "deploy"},
               annotations={"tekton.dev/pipeline": "ignored", "tekton.dev/pipelineRun": "deploy-run-9",
                            "runUrl": "job/app/42/"})
    assert identify(pod, provider="eci", rules=rules).build == BuildRef(job="deploy", build="deploy-run-9",
                                                                        source=SOURCE_CUSTOM)


def test_pod_without_any_build_keys_has_an_empty_build() -> None:
    assert identify(_pod(), provider="mock").build == BuildRef()


def test_run_url_without_a_job_segment_is_ignored() -> None:
    assert parse_run_url("view/all/42/") is None
