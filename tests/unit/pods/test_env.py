"""Container environments through resolve_pod: value, valueFrom key refs, envFrom, order and sensitivity."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.pods.fakes import FakeSource, container, make_pod
from vnode.errors import InvalidPod, NotSupported, Retryable
from vnode.pods.resolve import MissingReference, Resolution, resolve_pod
from vnode.providers.base import EnvVar, ProviderEvent


async def resolve(pod: dict[str, Any], source: FakeSource | None = None) -> Resolution:
    return await resolve_pod(pod, source or FakeSource(), node_name="vnode-1", host_ip="10.0.0.5")


def env_of(resolution: Resolution, name: str = "c") -> dict[str, str]:
    return {var.name: var.value for var in resolution.pod.env[name]}


def cm_ref(name: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"valueFrom": {"configMapKeyRef": {"name": name, "key": key, **extra}}}


def secret_ref(name: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"valueFrom": {"secretKeyRef": {"name": name, "key": key, **extra}}}


async def test_plain_values_expand_earlier_variables() -> None:
    """`$(VAR)` in a value sees variables defined before it in the same container."""
    env = [{"name": "A", "value": "a"}, {"name": "B", "value": "$(A)-b"}, {"name": "C", "value": "$(B)-c"}]
    assert env_of(await resolve(make_pod(container(env=env)))) == {"A": "a", "B": "a-b", "C": "a-b-c"}


async def test_reference_to_a_later_variable_stays_literal() -> None:
    """A variable defined after the reference is not yet known, so the reference is kept."""
    env = [{"name": "B", "value": "$(A)-b"}, {"name": "A", "value": "a"}]
    assert env_of(await resolve(make_pod(container(env=env))))["B"] == "$(A)-b"


async def test_expansion_sees_envfrom_variables() -> None:
    """envFrom variables are defined before every env entry."""
    source = FakeSource().add_configmap("cfg", {"HOST": "db"})
    pod = make_pod(container(envFrom=[{"configMapRef": {"name": "cfg"}}], env=[{"name": "URL", "value": "pg://$(HOST)"}]))
    assert env_of(await resolve(pod, source))["URL"] == "pg://db"


async def test_expansion_is_per_container() -> None:
    """Another container's variables are not visible."""
    pod = make_pod(container("a", env=[{"name": "X", "value": "1"}]),
                   container("b", env=[{"name": "Y", "value": "$(X)"}]))
    assert env_of(await resolve(pod), "b") == {"Y": "$(X)"}


async def test_env_overrides_envfrom() -> None:
    """An env entry replaces an envFrom variable of the same name."""
    source = FakeSource().add_configmap("cfg", {"MODE": "from-cm"})
    pod = make_pod(container(envFrom=[{"configMapRef": {"name": "cfg"}}], env=[{"name": "MODE", "value": "env"}]))
    assert env_of(await resolve(pod, source)) == {"MODE": "env"}


async def test_configmap_key_ref() -> None:
    """configMapKeyRef takes the key's value from the ConfigMap's data."""
    source = FakeSource().add_configmap("cfg", {"level": "debug"})
    pod = make_pod(container(env=[{"name": "LEVEL", **cm_ref("cfg", "level")}]))
    assert (await resolve(pod, source)).pod.env["c"] == (EnvVar("LEVEL", "debug", sensitive=False),)


async def test_secret_key_ref_is_decoded_and_sensitive() -> None:
    """secretKeyRef decodes base64 data and marks the variable sensitive."""
    source = FakeSource().add_secret("creds", {"password": "s3cret"})
    pod = make_pod(container(env=[{"name": "PW", **secret_ref("creds", "password")}]))
    assert (await resolve(pod, source)).pod.env["c"] == (EnvVar("PW", "s3cret", sensitive=True),)


async def test_value_built_from_a_secret_is_sensitive() -> None:
    """A value that expands a Secret-backed variable is sensitive too."""
    source = FakeSource().add_secret("creds", {"password": "s3cret"})
    env = [{"name": "PW", **secret_ref("creds", "password")}, {"name": "URL", "value": "pg://u:$(PW)@db"},
           {"name": "PLAIN", "value": "x"}]
    resolved = (await resolve(make_pod(container(env=env)), source)).pod.env["c"]
    assert [(v.name, v.sensitive) for v in resolved] == [("PW", True), ("URL", True), ("PLAIN", False)]


async def test_envfrom_secret_is_sensitive() -> None:
    """Variables from an envFrom secretRef are sensitive."""
    source = FakeSource().add_secret("creds", {"TOKEN": "t"})
    pod = make_pod(container(envFrom=[{"secretRef": {"name": "creds"}}]))
    assert (await resolve(pod, source)).pod.env["c"] == (EnvVar("TOKEN", "t", sensitive=True),)


async def test_envfrom_prefix() -> None:
    """envFrom prepends its prefix to every key."""
    source = FakeSource().add_configmap("cfg", {"HOST": "db", "PORT": "5432"})
    pod = make_pod(container(envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "DB_"}]))
    assert env_of(await resolve(pod, source)) == {"DB_HOST": "db", "DB_PORT": "5432"}


async def test_envfrom_configmap_ignores_binary_data() -> None:
    """Only a ConfigMap's `data` becomes environment, never `binaryData`."""
    source = FakeSource().add_configmap("cfg", {"A": "1"}, binary={"BLOB": b"\x00\x01"})
    pod = make_pod(container(envFrom=[{"configMapRef": {"name": "cfg"}}]))
    assert env_of(await resolve(pod, source)) == {"A": "1"}


async def test_envfrom_skips_invalid_names_with_a_warning() -> None:
    """Keys that are not valid variable names are skipped and named, sorted, in one Warning event."""
    source = FakeSource().add_configmap("cfg", {"GOOD": "1", "2BAD": "x", "1BAD": "y"})
    resolution = await resolve(make_pod(container(envFrom=[{"configMapRef": {"name": "cfg"}}])), source)
    assert env_of(resolution) == {"GOOD": "1"}
    assert resolution.events == (ProviderEvent(
        "Warning", "InvalidEnvironmentVariableNames",
        "keys [1BAD, 2BAD] from configmap ns/cfg were skipped since they are invalid as environment variable names"),)


async def test_envfrom_prefix_can_make_a_key_valid() -> None:
    """Validity is judged on the prefixed name."""
    source = FakeSource().add_configmap("cfg", {"1X": "v"})
    pod = make_pod(container(envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "P_"}]))
    resolution = await resolve(pod, source)
    assert (env_of(resolution), resolution.events) == ({"P_1X": "v"}, ())


@pytest.mark.parametrize(("env", "reason"), [
    ([{"name": "V", **cm_ref("missing", "k")}], "MandatoryConfigMapNotFound"),
    ([{"name": "V", **secret_ref("missing", "k")}], "MandatorySecretNotFound"),
    ([{"name": "V", **cm_ref("cfg", "missing")}], "MandatoryConfigMapKeyNotFound"),
    ([{"name": "V", **secret_ref("creds", "missing")}], "MandatorySecretKeyNotFound"),
])
async def test_missing_mandatory_reference_raises_retryable(env: list[dict[str, Any]], reason: str) -> None:
    """An absent mandatory object or key raises MissingReference, a Retryable carrying the Warning to record."""
    source = FakeSource().add_configmap("cfg", {"k": "v"}).add_secret("creds", {"k": "v"})
    with pytest.raises(MissingReference) as caught:
        await resolve(make_pod(container(env=env)), source)
    assert isinstance(caught.value, Retryable)
    assert (caught.value.event.type, caught.value.event.reason) == ("Warning", reason)
    assert "missing" in caught.value.event.message


async def test_mandatory_message_names_object_and_key() -> None:
    """The Warning message names the key and the object it was looked for in."""
    source = FakeSource().add_configmap("cfg", {})
    with pytest.raises(MissingReference) as caught:
        await resolve(make_pod(container(env=[{"name": "V", **cm_ref("cfg", "level")}])), source)
    assert caught.value.event.message == 'key "level" does not exist in configmap "cfg"'


async def test_missing_mandatory_envfrom_raises() -> None:
    """A mandatory envFrom source that is absent raises MissingReference."""
    with pytest.raises(MissingReference) as caught:
        await resolve(make_pod(container(envFrom=[{"secretRef": {"name": "gone"}}])))
    assert caught.value.event == ProviderEvent("Warning", "MandatorySecretNotFound", 'secret "gone" not found')


@pytest.mark.parametrize(("env", "reason"), [
    ([{"name": "V", **cm_ref("missing", "k", optional=True)}], "OptionalConfigMapNotFound"),
    ([{"name": "V", **secret_ref("missing", "k", optional=True)}], "OptionalSecretNotFound"),
    ([{"name": "V", **cm_ref("cfg", "missing", optional=True)}], "OptionalConfigMapKeyNotFound"),
    ([{"name": "V", **secret_ref("creds", "missing", optional=True)}], "OptionalSecretKeyNotFound"),
])
async def test_missing_optional_reference_skips_with_warning(env: list[dict[str, Any]], reason: str) -> None:
    """An absent optional object or key leaves the variable unset and adds a Warning event."""
    source = FakeSource().add_configmap("cfg", {"k": "v"}).add_secret("creds", {"k": "v"})
    resolution = await resolve(make_pod(container(env=env)), source)
    assert env_of(resolution) == {}
    assert [(e.type, e.reason) for e in resolution.events] == [("Warning", reason)]
    assert resolution.events[0].message.startswith('skipping optional envvar "V": ')


async def test_missing_optional_envfrom_is_skipped() -> None:
    """An optional envFrom source that is absent contributes nothing and adds a Warning."""
    pod = make_pod(container(envFrom=[{"configMapRef": {"name": "gone", "optional": True}}]))
    resolution = await resolve(pod)
    assert env_of(resolution) == {}
    assert resolution.events == (ProviderEvent("Warning", "OptionalConfigMapNotFound", 'configmap "gone" not found'),)


async def test_skipped_optional_variable_does_not_shadow_envfrom() -> None:
    """A skipped optional env entry leaves an envFrom variable of the same name in place."""
    source = FakeSource().add_configmap("cfg", {"V": "from-cm"})
    pod = make_pod(container(envFrom=[{"configMapRef": {"name": "cfg"}}],
                             env=[{"name": "V", **secret_ref("gone", "k", optional=True)}]))
    assert env_of(await resolve(pod, source)) == {"V": "from-cm"}


async def test_all_container_kinds_get_env() -> None:
    """Init, app and ephemeral containers all get their environment, keyed by name."""
    pod = make_pod(container("app", env=[{"name": "K", "value": "app"}]),
                   initContainers=[container("init", env=[{"name": "K", "value": "init"}])],
                   ephemeralContainers=[container("debug", env=[{"name": "K", "value": "debug"}])])
    env = (await resolve(pod)).pod.env
    assert {name: vars_[0].value for name, vars_ in env.items()} == {"init": "init", "app": "app", "debug": "debug"}


async def test_each_object_is_read_once() -> None:
    """A ConfigMap referenced many times is fetched from the source once per resolution."""
    source = FakeSource().add_configmap("cfg", {"a": "1", "b": "2"})
    pod = make_pod(container("x", env=[{"name": "A", **cm_ref("cfg", "a")}, {"name": "B", **cm_ref("cfg", "b")}]),
                   container("y", envFrom=[{"configMapRef": {"name": "cfg"}}]))
    await resolve(pod, source)
    assert source.reads == [("configmap", "ns", "cfg")]


async def test_empty_value_without_source_is_empty() -> None:
    """A variable with neither value nor valueFrom is set to the empty string."""
    assert env_of(await resolve(make_pod(container(env=[{"name": "E"}])))) == {"E": ""}


async def test_file_key_ref_is_not_supported() -> None:
    """valueFrom.fileKeyRef (read by the runtime from a volume) raises NotSupported."""
    env = [{"name": "F", "valueFrom": {"fileKeyRef": {"volumeName": "v", "path": "f.env", "key": "K"}}}]
    with pytest.raises(NotSupported):
        await resolve(make_pod(container(env=env)))


async def test_unknown_value_from_is_invalid() -> None:
    """A valueFrom with no known source raises InvalidPod naming the field."""
    with pytest.raises(InvalidPod) as caught:
        await resolve(make_pod(container(env=[{"name": "X", "valueFrom": {"somethingNew": {}}}])))
    assert caught.value.field == "spec.containers[0].env[0].valueFrom"


async def test_envfrom_without_a_source_is_invalid() -> None:
    """An envFrom entry naming no ConfigMap or Secret raises InvalidPod naming the entry."""
    with pytest.raises(InvalidPod) as caught:
        await resolve(make_pod(container(envFrom=[{"prefix": "X_"}])))
    assert caught.value.field == "spec.containers[0].envFrom[0]"
