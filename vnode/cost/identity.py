"""Who a pod is and which CI build it belongs to, from the pod's labels and annotations.

Owns the reading of build identity: configurable keys for any CI system first, then the Jenkins kubernetes-plugin's
`runUrl` / `buildUrl` annotations, then its lossy `jenkins/label` label. Pure: no I/O, no pricing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from vnode.config import CostSettings

# The kubernetes-plugin's podTemplate step annotates each agent pod with the run's URL relative to Jenkins
# (`job/<folder>/job/<name>/<N>/`) and absolute (`buildUrl`); static cloud templates carry neither.
JENKINS_RUN_URL = "runUrl"
JENKINS_BUILD_URL = "buildUrl"
# Label `jenkins/label` = sanitize(fullName#N) + "-" + 5 random characters: the plugin keeps only the last 57
# characters and maps `/` and `#` to `_`, so the job recovered from it is lossy.
JENKINS_LABEL = "jenkins/label"
_JENKINS_LABEL_BUILD = re.compile(r"^(?P<job>.+)_(?P<build>[0-9]+)-[0-9a-z]{5}$")

SOURCE_CUSTOM = "custom"
SOURCE_JENKINS = "jenkins"
SOURCE_JENKINS_LABEL = "jenkins-label"


@dataclass(frozen=True, slots=True)
class BuildRef:
    """The build a pod ran for: `job` (e.g. `folder/app`), `build` (e.g. `42`), a link, and which keys said so."""

    job: str = ""
    build: str = ""
    url: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class PodIdentity:
    namespace: str
    name: str
    uid: str
    node: str = ""
    provider: str = ""
    build: BuildRef = BuildRef()
    labels: Mapping[str, str] = field(default_factory=dict)


# Shared by every pod without labels or a build (one object each, not one per pod).
_NO_BUILD = BuildRef()
_NO_LABELS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class IdentityRules:
    """Extra label/annotation keys (tried in order, labels before annotations) for CI systems other than Jenkins."""

    job_keys: tuple[str, ...] = ()
    build_keys: tuple[str, ...] = ()
    url_keys: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: CostSettings) -> IdentityRules:
        return cls(job_keys=settings.job_keys, build_keys=settings.build_keys, url_keys=settings.url_keys)


def identify(pod: Mapping[str, Any], *, provider: str, rules: IdentityRules = IdentityRules()) -> PodIdentity:
    """The identity of a stored pod (a JSON dict as the API server returns it)."""
    meta: Mapping[str, Any] = pod.get("metadata") or {}
    spec: Mapping[str, Any] = pod.get("spec") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()} or _NO_LABELS
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    return PodIdentity(namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")),
                       uid=str(meta.get("uid", "")), node=str(spec.get("nodeName") or ""), provider=provider,
                       build=build_of(labels, annotations, rules), labels=labels)


def build_of(labels: Mapping[str, str], annotations: Mapping[str, str],
             rules: IdentityRules = IdentityRules()) -> BuildRef:
    custom = _custom(labels, annotations, rules)
    if custom.job or custom.build:
        return custom
    for key in (JENKINS_RUN_URL, JENKINS_BUILD_URL):
        parsed = parse_run_url(annotations.get(key, ""))
        if parsed is not None:
            job, build = parsed
            return BuildRef(job=job, build=build, url=annotations.get(JENKINS_BUILD_URL, ""), source=SOURCE_JENKINS)
    match = _JENKINS_LABEL_BUILD.match(labels.get(JENKINS_LABEL, ""))
    if match:
        return BuildRef(job=match["job"], build=match["build"], source=SOURCE_JENKINS_LABEL)
    return BuildRef(url=custom.url) if custom.url else _NO_BUILD


def parse_run_url(url: str) -> tuple[str, str] | None:
    """(job path, build number) from a Jenkins run URL, relative (`job/a/job/b/7/`) or absolute (any context path
    before the first `job/`); None when it names no job. Segments are URL-decoded (multibranch names use %2F)."""
    if not url:
        return None
    path = urlsplit(url).path if "://" in url else url
    segments = [s for s in path.split("/") if s]
    if "job" not in segments:
        return None
    segments = segments[segments.index("job"):]
    job: list[str] = []
    build = ""
    index = 0
    while index < len(segments):
        if segments[index] == "job" and index + 1 < len(segments):
            job.append(unquote(segments[index + 1]))
            index += 2
            continue
        if segments[index].isdigit() and not build:
            build = segments[index]
        index += 1
    if not job:
        return None
    return "/".join(job), build


def _custom(labels: Mapping[str, str], annotations: Mapping[str, str], rules: IdentityRules) -> BuildRef:
    def first(keys: tuple[str, ...]) -> str:
        for key in keys:
            for source in (labels, annotations):
                if source.get(key):
                    return source[key]
        return ""

    job, build, url = first(rules.job_keys), first(rules.build_keys), first(rules.url_keys)
    return BuildRef(job=job, build=build, url=url, source=SOURCE_CUSTOM if job or build else "")
