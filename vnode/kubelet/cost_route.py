"""`GET /cost/report?by=&since=&until=&format=`: the node's cost report over the kubelet API, so that
`kubectl get --raw /api/v1/nodes/<node>/proxy/cost/report?by=build` answers it under the cluster's RBAC.

The API server proxies `nodes/proxy/*` here; the `AccessGate` already asked for `get` on `nodes/proxy` (a read).
The report itself comes from a callable the agent injects (the kubelet must not import the cost package): it takes
the query parameters and returns (content type, body), raising `Invalid` for a bad parameter. This module owns only
the HTTP side: status codes, and errors as metav1.Status bodies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from vnode.errors import Invalid, VnodeError

log = logging.getLogger(__name__)
PATH = "/cost/report"
# (query parameters) → (Content-Type, body); Invalid names the bad parameter.
CostReporter = Callable[[Mapping[str, str]], Awaitable[tuple[str, bytes]]]
DISABLED = "the cost ledger is disabled on this node (cost.enabled=false)"


_REASONS = {400: "BadRequest", 404: "NotFound", 500: "InternalError"}


def _message(status: int, text: str) -> web.Response:
    # A metav1.Status, as the kubelet's API machinery writes errors: the API server's node proxy passes it through
    # and kubectl prints its message (`Error from server (BadRequest): by: must be ...`). A bare text body would
    # reach the user as "the server rejected our request for an unknown reason".
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": text,
            "reason": _REASONS[status], "code": status}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def cost_report_handler(reporter: CostReporter | None) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The route's handler; with no reporter (cost disabled) it answers 404 saying so."""

    async def handle(request: web.Request) -> web.Response:
        if reporter is None:
            return _message(404, DISABLED)
        # A repeated parameter counts once, as Go's url.Values.Get reads the first value.
        params: dict[str, str] = {}
        for key, value in request.query.items():
            params.setdefault(key, value)
        try:
            content_type, body = await reporter(params)
        except Invalid as exc:
            return _message(400, str(exc))
        except VnodeError as exc:
            log.warning("cost report failed: %s", exc)
            return _message(500, f"failed to get cost report: {exc}")
        return web.Response(body=body, headers={"Content-Type": content_type})

    return handle
