"""`request_serving_certificate` against a live sandbox: the CSR it files, approval or denial by an admin (as
`kubectl certificate approve|deny` writes it), and the files it leaves behind."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.support.sandbox import RunningSandbox, running_sandbox
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.errors import ConfigError
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.kubelet.certs import request_serving_certificate
from vnode.util import x509 as certs

NODE = "vnode"
ADDRESSES = ["10.1.2.3", "vnode.example.internal"]
WAIT = 20.0


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[KubeClient]:
    async with await KubeClient.connect(sandbox.kubeconfig, qps=0, clock=SystemClock()) as admin:
        yield admin


async def decide(client: KubeClient, condition: str, message: str) -> dict[str, Any]:
    """Wait for a pending kubelet-serving CSR and add `condition` through its approval subresource."""
    async def pending() -> dict[str, Any] | None:
        listed = await client.list(paths.certificatesigningrequests_path(),
                                   {"fieldSelector": "spec.signerName=kubernetes.io/kubelet-serving"})
        return next(iter(listed["items"]), None)

    csr = await eventually(pending, timeout_seconds=WAIT, what="a kubelet-serving CSR")
    assert csr is not None
    csr.setdefault("status", {}).setdefault("conditions", []).append(
        {"type": condition, "status": "True", "reason": "KubectlApprove", "message": message})
    await client.replace(paths.certificatesigningrequest_path(csr["metadata"]["name"], "approval"), csr)
    return csr


async def request(client: KubeClient, tmp_path: Path, *, timeout_seconds: float = WAIT) -> str:
    return await request_serving_certificate(
        client, node_name=NODE, addresses=ADDRESSES, key_file=tmp_path / "out" / "kubelet.key",
        cert_file=tmp_path / "out" / "kubelet.crt", clock=SystemClock(), timeout_seconds=timeout_seconds,
        poll_interval_seconds=0.05)


async def request_while_deciding(client: KubeClient, tmp_path: Path, condition: str,
                                 message: str = "decided by the test") -> tuple[str, dict[str, Any]]:
    """Run the request with a concurrent approver; returns (CSR name, the CSR as the approver saw it)."""
    deciding = asyncio.create_task(decide(client, condition, message), name="test approver")
    try:
        name = await request(client, tmp_path)
    except ConfigError:
        await deciding  # a denial is seen only once the approver's write is in
        raise
    except BaseException:
        deciding.cancel()
        await asyncio.gather(deciding, return_exceptions=True)
        raise
    return name, await deciding


async def test_approved_request_writes_a_certificate_from_the_cluster_ca(
        sandbox: RunningSandbox, client: KubeClient, tmp_path: Path) -> None:
    """Once approved, the certificate chains to the cluster CA, names system:node:<node> and covers every address."""
    name, csr = await request_while_deciding(client, tmp_path, "Approved")
    assert name == csr["metadata"]["name"]
    cert = certs.read_cert(tmp_path / "out" / "kubelet.crt")
    cert.verify_directly_issued_by(certs.read_cert(sandbox.state_dir / "pki" / "ca.crt"))
    assert certs.subject_identity(cert) == (f"system:node:{NODE}", ["system:nodes"])
    dns, ips = certs.san_names(cert)
    assert set(dns) == {"vnode.example.internal", NODE}
    assert ips == [ipaddress.ip_address("10.1.2.3")]


async def test_key_file_matches_the_certificate_and_is_private(client: KubeClient, tmp_path: Path) -> None:
    """The key written is the certificate's, readable by its owner only."""
    await request_while_deciding(client, tmp_path, "Approved")
    key_path = tmp_path / "out" / "kubelet.key"
    assert certs.read_key(key_path).public_key() == certs.read_cert(tmp_path / "out" / "kubelet.crt").public_key()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


async def test_request_is_the_kubelets_serving_csr(client: KubeClient, tmp_path: Path) -> None:
    """The CSR names the kubelet-serving signer, an EC key's usages, and the node identity in its request."""
    _, csr = await request_while_deciding(client, tmp_path, "Approved")
    spec = csr["spec"]
    assert spec["signerName"] == "kubernetes.io/kubelet-serving"
    assert spec["usages"] == ["digital signature", "server auth"]
    pem = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
    assert pem.subject.rfc4514_string() == f"CN=system:node:{NODE},O=system:nodes"


async def test_denied_request_is_a_config_error_with_the_reason(client: KubeClient, tmp_path: Path) -> None:
    """A denial ends the wait with the denier's message, and nothing is written."""
    with pytest.raises(ConfigError, match="was denied: not on this cluster"):
        await request_while_deciding(client, tmp_path, "Denied", "not on this cluster")
    assert not (tmp_path / "out").exists()


async def test_unapproved_request_times_out_with_the_approval_command(client: KubeClient, tmp_path: Path) -> None:
    """Nobody approves: TimeoutError telling the user what to run."""
    with pytest.raises(TimeoutError, match=r"kubectl certificate approve csr-"):
        await request(client, tmp_path, timeout_seconds=0.2)
