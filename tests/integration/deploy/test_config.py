"""The settings file each kustomization ships loads as vnode loads it, and the Deployment is wired to it: config
path, credentials directory, probes and ports, environment; the liveness probe script against a real vnode."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.deploy.manifests import DEPLOY, Build, build, copy_deploy
from tests.support.agent import running_agent
from tests.support.kubectl import kubectl_binary
from tests.support.sandbox import running_sandbox
from vnode.agent import internal_ip
from vnode.config import EciProviderSettings, MockProviderSettings, VnodeSettings, load_settings
from vnode.providers.eci.credentials import NAMES, FileCredentials

POD_IP = "10.20.30.40"
LIVENESS = DEPLOY / "base" / "liveness.py"


def container_env(built: Build, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Deployment's literal env, and the pod IP the downward API would give, as the container sees them."""
    for var in list(os.environ):
        if var.startswith("VNODE_"):
            monkeypatch.delenv(var)
    for entry in built.container().get("env", []):
        if "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"])
    monkeypatch.setenv("VNODE_POD_IP", POD_IP)


def mounted_files(built: Build, tmp_path: Path) -> dict[str, Path]:
    """The ConfigMap's keys written where the Deployment mounts them: mount path → file on disk."""
    pod = built.one("Deployment", "vnode")["spec"]["template"]["spec"]
    config_map = built.config_map()
    volume = next(v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == config_map["metadata"][
        "name"])
    mount = next(m["mountPath"] for m in built.container()["volumeMounts"] if m["name"] == volume)
    tmp_path.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, text in config_map["data"].items():
        (tmp_path / key).write_text(text)
        files[f"{mount}/{key}"] = tmp_path / key
    return files


def settings_as_deployed(built: Build, tmp_path: Path) -> VnodeSettings:
    args = built.container()["args"]
    assert args[0] == "run"
    config_path = args[args.index("--config") + 1]
    files = mounted_files(built, tmp_path)
    assert config_path in files, f"--config {config_path} is not a file of the mounted ConfigMap ({sorted(files)})"
    return load_settings(config_file=files[config_path])


def test_config_file_loads_as_deployed(built: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vnode run --config` with the mounted file and the Deployment's env: the node name from VNODE_NODE__NAME,
    the InternalIP from the downward API's pod IP, the provider the kustomization names."""
    container_env(built, monkeypatch)
    settings = settings_as_deployed(built, tmp_path)
    assert settings.node.name == built.node_name
    assert internal_ip(settings) == POD_IP
    want = {"base": MockProviderSettings, "overlays/eci": EciProviderSettings}[built.name]
    assert isinstance(settings.provider, want)
    assert settings.kubelet.anonymous is False and settings.kubelet.authorization_mode == "Webhook"
    assert settings.kube.kubeconfig is None  # in-cluster service account


def test_eci_credentials_secret_is_what_vnode_reads(builds: dict[str, Build], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The overlay's Secret is mounted at provider.credentials_dir, and its files are what the ECI client reads."""
    built = builds["overlays/eci"]
    container_env(built, monkeypatch)
    settings = settings_as_deployed(built, tmp_path / "config")
    provider = settings.provider
    assert isinstance(provider, EciProviderSettings) and provider.credentials_dir is not None
    secret = built.one("Secret", "vnode-eci-credentials")
    pod = built.one("Deployment", "vnode")["spec"]["template"]["spec"]
    volume = next(v["name"] for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "vnode-eci-credentials")
    mount = next(m for m in built.container()["volumeMounts"] if m["name"] == volume)
    assert Path(mount["mountPath"]) == provider.credentials_dir and mount["readOnly"] is True
    assert set(secret["data"]) <= set(NAMES)
    directory = tmp_path / "credentials"
    directory.mkdir()
    for key, value in secret["data"].items():
        (directory / key).write_bytes(base64.b64decode(value))
    credentials = FileCredentials(directory).current()
    assert credentials.access_key_id == "REPLACE_ME_ACCESS_KEY_ID"
    assert credentials.access_key_secret == "REPLACE_ME_ACCESS_KEY_SECRET"


def test_deployment_matches_the_settings(built: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One replica replaced by Recreate; the kubelet port in the container, the probes and the settings agree; the
    pod IP comes from the downward API; the container runs as non-root on a read-only root with writable scratch."""
    container_env(built, monkeypatch)
    deployment = built.one("Deployment", "vnode")
    settings = settings_as_deployed(built, tmp_path)
    container = built.container()
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["serviceAccountName"] == "vnode"
    assert built.env("VNODE_POD_IP")["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    port = next(p for p in container["ports"] if p["name"] == "kubelet")
    assert port["containerPort"] == settings.kubelet.port
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["tcpSocket"]["port"] in ("kubelet", settings.kubelet.port)
    command = container["livenessProbe"]["exec"]["command"]
    assert command[-1] == str(settings.kubelet.port) and command[1] in mounted_files(built, tmp_path)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert {"/tmp", built.env("HOME")["value"]} <= writable
    assert set(container["resources"]) == {"requests", "limits"}


def test_serving_cert_component_points_vnode_at_the_mounted_secret(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An overlay using components/serving-cert: kubelet.tls_cert_file/tls_key_file are the files of the mounted
    kubernetes.io/tls Secret."""
    deploy = copy_deploy(tmp_path)
    overlay = deploy / "overlays" / "eci-with-cert"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["../eci"],
        "components": ["../../components/serving-cert"]}))
    built = Build("eci-with-cert", overlay, build(kubectl_binary(), overlay))
    container_env(built, monkeypatch)
    settings = settings_as_deployed(built, tmp_path / "config")
    pod = built.one("Deployment", "vnode")["spec"]["template"]["spec"]
    volume = next(v["name"] for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "vnode-serving-cert")
    mount = Path(next(m["mountPath"] for m in built.container()["volumeMounts"] if m["name"] == volume))
    assert (settings.kubelet.tls_cert_file, settings.kubelet.tls_key_file) == (mount / "tls.crt", mount / "tls.key")
    assert isinstance(settings.provider, EciProviderSettings)


async def liveness(port: int) -> int:
    process = await asyncio.create_subprocess_exec(sys.executable, str(LIVENESS), str(port),
                                                   stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.DEVNULL)
    return await process.wait()


async def test_liveness_probe_passes_against_vnode(tmp_path: Path) -> None:
    """The probe script gets an HTTP answer from vnode's kubelet API (401 without credentials) and exits 0."""
    async with running_sandbox(tmp_path / "sandbox") as sandbox, running_agent(sandbox) as agent:
        assert await liveness(agent.kubelet.port) == 0


async def test_liveness_probe_fails_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert await liveness(port) == 1


async def test_liveness_probe_fails_on_a_listener_that_never_answers() -> None:
    """A socket that accepts but never answers (what a TCP probe would pass) fails the probe."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()  # until the probe gives up and closes
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        assert await liveness(port) == 1
        assert connections, "the probe never connected"
    finally:
        server.close()
        await server.wait_closed()
