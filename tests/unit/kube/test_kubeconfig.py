"""Where credentials come from: explicit kubeconfig, $KUBECONFIG, in-cluster service account, ~/.kube/config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vnode.errors import ConfigError
from vnode.kube.kubeconfig import load_configuration


def write_kubeconfig(path: Path, server: str, token: str, *, extra_context: str | None = None) -> Path:
    contexts = [{"name": "main", "context": {"cluster": "c", "user": "u"}}]
    clusters = [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}]
    users = [{"name": "u", "user": {"token": token}}]
    if extra_context:
        contexts.append({"name": extra_context, "context": {"cluster": "c2", "user": "u2"}})
        clusters.append({"name": "c2", "cluster": {"server": "https://other.example:6443"}})
        users.append({"name": "u2", "user": {"token": "other-token"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "main",
                                    "contexts": contexts, "clusters": clusters, "users": users}))
    return path


def service_account(tmp_path: Path, token: str) -> tuple[Path, Path]:
    token_path, ca_path = tmp_path / "sa" / "token", tmp_path / "sa" / "ca.crt"
    token_path.parent.mkdir()
    token_path.write_text(token)
    ca_path.write_text("-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n")
    return token_path, ca_path


async def test_an_explicit_kubeconfig_wins_over_the_environment(tmp_path: Path) -> None:
    """--kubeconfig is used even when $KUBECONFIG points elsewhere."""
    explicit = write_kubeconfig(tmp_path / "explicit", "https://explicit.example:6443", "t1")
    env_file = write_kubeconfig(tmp_path / "env", "https://env.example:6443", "t2")
    configuration = await load_configuration(explicit, environ={"KUBECONFIG": str(env_file)})
    assert configuration.host == "https://explicit.example:6443"
    assert configuration.api_key["BearerToken"] == "Bearer t1"


async def test_kubeconfig_env_comes_before_in_cluster(tmp_path: Path) -> None:
    """$KUBECONFIG is preferred to the pod's service account."""
    env_file = write_kubeconfig(tmp_path / "env", "https://env.example:6443", "t2")
    token, ca = service_account(tmp_path, "sa-token")
    configuration = await load_configuration(environ={"KUBECONFIG": str(env_file),
                                                      "KUBERNETES_SERVICE_HOST": "10.0.0.1",
                                                      "KUBERNETES_SERVICE_PORT": "443"},
                                             token_path=token, ca_path=ca, home=tmp_path / "home")
    assert configuration.host == "https://env.example:6443"


async def test_in_cluster_uses_the_service_account_token_and_ca(tmp_path: Path) -> None:
    """In a pod, the service host/port env and the mounted token and CA make the configuration."""
    token, ca = service_account(tmp_path, "sa-token")
    configuration = await load_configuration(environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1",
                                                      "KUBERNETES_SERVICE_PORT": "443"},
                                             token_path=token, ca_path=ca, home=tmp_path / "home")
    assert configuration.host == "https://10.0.0.1:443"
    assert configuration.ssl_ca_cert == str(ca)
    # The refresh hook re-reads the (rotating) token file on use.
    assert configuration.refresh_api_key_hook is not None
    assert (await configuration.auth_settings())["BearerToken"]["value"] == "Bearer sa-token"


async def test_home_kubeconfig_is_the_last_resort(tmp_path: Path) -> None:
    """Outside a pod and without $KUBECONFIG, ~/.kube/config is used."""
    write_kubeconfig(tmp_path / "home" / ".kube" / "config", "https://home.example:6443", "t3")
    configuration = await load_configuration(environ={}, home=tmp_path / "home")
    assert configuration.host == "https://home.example:6443"


async def test_a_context_selects_cluster_and_user(tmp_path: Path) -> None:
    """`context` picks a non-current kubeconfig context."""
    path = write_kubeconfig(tmp_path / "k", "https://main.example:6443", "t1", extra_context="other")
    configuration = await load_configuration(path, context="other", environ={})
    assert configuration.host == "https://other.example:6443"
    assert configuration.api_key["BearerToken"] == "Bearer other-token"


async def test_no_source_is_a_config_error_naming_what_was_tried(tmp_path: Path) -> None:
    """With nothing to use, the error says what was looked for."""
    with pytest.raises(ConfigError, match="no Kubernetes credentials found"):
        await load_configuration(environ={}, home=tmp_path / "home")


async def test_an_unreadable_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    """A kubeconfig that does not exist is reported as a configuration problem, not a crash."""
    with pytest.raises(ConfigError, match="kubeconfig"):
        await load_configuration(tmp_path / "missing", environ={})
