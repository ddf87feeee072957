"""The emulator's operator API under `/_emulator/`: inject and clear faults, reclaim a spot group, read the request log.

Plain JSON on the emulator's own port, not signed: it is for tests and operators steering the emulator and is no
part of ECI's API (which answers only at `/`). Routes:
- `GET /_emulator/faults` → `{"faults": [...], "delayed": n}` (n: calls waiting out a latency right now);
- `POST /_emulator/faults` with one of
  `{"action": A, "code": C, "times": 3, "http_status": 503, "message": M, "after_apply": false}` (times default 1;
  after_apply: the action takes effect, then the error is answered, as when an answer is lost),
  `{"latency_seconds": 2, "action": "*", "times": null}` or
  `{"no_stock": {"cpu": 2, "memory": 4} | {"instance_type": "ecs.c6.xlarge"}, "times": null}` (times default null:
  until cleared) → 201 `{"fault": {...}}`;
- `DELETE /_emulator/faults` → `{"cleared": n}`;
- `POST /_emulator/spot-release` `{"group_id": G, "notice_seconds": 180}` → `EciEmulator.release_spot`;
- `GET /_emulator/requests?action=A&limit=N` → `{"requests": [...]}`, oldest first, secrets already stripped; each
  `{action, method, params, http_status, code, at}` (`at`: the emulator clock's monotonic seconds on arrival).
A bad body answers 400 `{"error": "..."}`. This module changes the emulator only through its public methods.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vnode.sandbox.eci.errors import EciApiError

if TYPE_CHECKING:
    from vnode.sandbox.eci.server import EciEmulator

PREFIX = "/_emulator"
_ERROR_KEYS = {"action", "code", "times", "http_status", "message", "after_apply"}
_LATENCY_KEYS = {"action", "latency_seconds", "times"}
_NO_STOCK_KEYS = {"no_stock", "times", "action"}
_SHAPE_KEYS = {"cpu", "memory", "instance_type"}


class BadBody(ValueError):
    """The request body does not describe a fault; its text says why."""


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def _error(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadBody(f"{key} must be a number")
    return float(value)


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadBody(f"{key} must be a non-empty string")
    return value


def _only(body: dict[str, Any], allowed: set[str], kind: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadBody(f"unknown fields for a {kind} fault: {', '.join(unknown)}")


class FaultApi:
    """The `/_emulator/` routes of one emulator."""

    def __init__(self, emulator: EciEmulator) -> None:
        self._emulator = emulator

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(f"{PREFIX}/faults", self.list_faults)
        app.router.add_post(f"{PREFIX}/faults", self.add_fault)
        app.router.add_delete(f"{PREFIX}/faults", self.clear_faults)
        app.router.add_post(f"{PREFIX}/spot-release", self.release_spot)
        app.router.add_get(f"{PREFIX}/requests", self.list_requests)

    async def list_faults(self, request: web.Request) -> web.Response:
        faults = self._emulator.faults
        return _json({"faults": faults.describe(), "delayed": faults.delayed})

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            body = await _object(request)
            fault = self.inject(body)
        except (BadBody, ValueError) as exc:
            return _error(str(exc))
        return _json({"fault": fault}, 201)

    def inject(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add the fault `body` describes (raising BadBody or ValueError); the fault as the listing shows it."""
        faults = self._emulator.faults
        if "no_stock" in body:
            _only(body, _NO_STOCK_KEYS, "no_stock")
            if body.get("action", "CreateContainerGroup") != "CreateContainerGroup":
                raise BadBody("no_stock applies to CreateContainerGroup only")
            shape = body["no_stock"]
            if not isinstance(shape, dict):
                raise BadBody('no_stock must be an object: {"cpu": 2, "memory": 4} or {"instance_type": "..."}')
            _only(shape, _SHAPE_KEYS, "no_stock")
            return faults.inject_no_stock(cpu=_number(shape, "cpu"), memory=_number(shape, "memory"),
                                          instance_type=_text(shape, "instance_type"), times=body.get("times"))
        if "latency_seconds" in body:
            _only(body, _LATENCY_KEYS, "latency")
            seconds = _number(body, "latency_seconds")
            if seconds is None:
                raise BadBody("latency_seconds must be a number")
            return faults.inject_latency(_text(body, "action") or "*", seconds, body.get("times"))
        if "code" in body:
            _only(body, _ERROR_KEYS, "error")
            status = body.get("http_status")
            if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                                       or not 400 <= status <= 599):
                raise BadBody("http_status must be an HTTP error status (400-599)")
            after_apply = body.get("after_apply", False)
            if not isinstance(after_apply, bool):
                raise BadBody("after_apply must be true or false")
            return faults.inject(_text(body, "action", required=True) or "", _text(body, "code", required=True) or "",
                                 body.get("times", 1), http_status=status, message=_text(body, "message"),
                                 after_apply=after_apply)
        raise BadBody("a fault needs one of: code (with action), latency_seconds, no_stock")

    async def clear_faults(self, request: web.Request) -> web.Response:
        count = len(self._emulator.faults.describe())
        self._emulator.faults.clear()
        return _json({"cleared": count})

    async def release_spot(self, request: web.Request) -> web.Response:
        try:
            body = await _object(request)
            _only(body, {"group_id", "notice_seconds"}, "spot-release")
            group_id = _text(body, "group_id", required=True)
            notice = _number(body, "notice_seconds")
        except BadBody as exc:
            return _error(str(exc))
        # ECI warns about 3 minutes before it reclaims a spot instance (SpotToBeReleased, eci.md §4).
        notice = 180.0 if notice is None else notice
        if notice < 0:
            return _error("notice_seconds must not be negative")
        try:
            self._emulator.release_spot(group_id or "", notice)
        except EciApiError as exc:
            return _json({"error": exc.message, "code": exc.code}, exc.http_status)
        return _json({"group_id": group_id, "notice_seconds": notice})

    async def list_requests(self, request: web.Request) -> web.Response:
        action = request.query.get("action")
        records = [asdict(r) for r in self._emulator.requests if action is None or r.action == action]
        limit = request.query.get("limit")
        if limit is not None:
            if not limit.isdigit():
                return _error("limit must be a whole number")
            records = records[-int(limit):] if int(limit) else []
        return _json({"requests": records})


async def _object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise BadBody(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadBody("the body must be a JSON object")
    return body
