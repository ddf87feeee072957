"""Signs approved CertificateSigningRequests with the sandbox CA, as kube-controller-manager's signers do.

Only approved, not denied, not yet issued CSRs for the built-in Kubernetes signers are signed; the certificate goes
into `status.certificate` (PEM, base64 in JSON). Approval itself is left to a person or an approver
(`kubectl certificate approve`), exactly as in a cluster.
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import Callable, Sequence

from vnode.sandbox.store import Obj, Store

log = logging.getLogger(__name__)
KEY = "certificatesigningrequests.certificates.k8s.io"
SIGNERS = ("kubernetes.io/kubelet-serving", "kubernetes.io/kube-apiserver-client",
           "kubernetes.io/kube-apiserver-client-kubelet")
DEFAULT_VALID_SECONDS = 365 * 24 * 3600
# The signer's floor for spec.expirationSeconds (CSR duration), as in kube-controller-manager.
MIN_VALID_SECONDS = 600
SignFunction = Callable[..., bytes]


def _condition(csr: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status", "True") == "True"
               for c in (csr.get("status") or {}).get("conditions") or [])


def wants_signature(csr: Obj) -> bool:
    spec = csr.get("spec") or {}
    return (spec.get("signerName") in SIGNERS and _condition(csr, "Approved") and not _condition(csr, "Denied")
            and not _condition(csr, "Failed") and not (csr.get("status") or {}).get("certificate"))


class CsrSigner:
    def __init__(self, store: Store, sign_csr: SignFunction) -> None:
        self._store = store
        self._sign_csr = sign_csr

    def sign(self, csr: Obj) -> None:
        spec = csr["spec"]
        new = copy.deepcopy(csr)
        try:
            usages: Sequence[str] = spec.get("usages") or []
            valid = max(int(spec.get("expirationSeconds") or DEFAULT_VALID_SECONDS), MIN_VALID_SECONDS)
            pem = self._sign_csr(base64.b64decode(spec["request"]), usages=usages, valid_seconds=valid)
            new.setdefault("status", {})["certificate"] = base64.b64encode(pem).decode()
        except (ValueError, KeyError) as exc:
            log.warning("cannot sign CSR %s: %s", csr["metadata"]["name"], exc)
            new.setdefault("status", {}).setdefault("conditions", []).append(
                {"type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": str(exc)})
        self._store.replace(KEY, new)

    async def run(self) -> None:
        """Sign each CSR as it becomes approved. Ends only by cancellation."""
        watcher = self._store.watch(KEY, namespace=None, matches=wants_signature, since=None)
        try:
            while True:
                event = await watcher.queue.get()
                if event is None:
                    self._store.unwatch(KEY, watcher)
                    watcher = self._store.watch(KEY, namespace=None, matches=wants_signature, since=None)
                    continue
                current = self._store.get(KEY, "", event.object["metadata"]["name"])
                if event.type != "DELETED" and current is not None and wants_signature(current):
                    self.sign(current)
        finally:
            self._store.unwatch(KEY, watcher)
