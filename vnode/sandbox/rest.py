"""HTTP handlers for resource URLs: get, list (with pagination and Table output), watch, create, update, patch,
delete, and the subresources that are not proxied (status, binding, approval, reviews).

Parses the request, calls the registry, renders the answer; kubelet-bound subresources (log, exec, attach,
portforward, nodes/proxy) are handed to the `proxy_http` hook the server wires in.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from vnode.clock import Clock
from vnode.sandbox import protobuf, selectors, status, tables
from vnode.sandbox.apipath import ApiPath, parse_api_path
from vnode.sandbox.auth import UserInfo
from vnode.sandbox.registry import Registry
from vnode.sandbox.resources import ResourceType
from vnode.sandbox.scale import ScaleSubresource
from vnode.sandbox.store import Obj
from vnode.sandbox.watch import ObjectView, WatchRequest, serve_watch

ProxyHook = Callable[[web.Request, ApiPath], Awaitable[web.StreamResponse]]
ReviewHook = Callable[[web.Request, ResourceType, Obj], Obj]
TokenRequestHook = Callable[[str, str, Obj], Obj]  # (namespace, service account, TokenRequest) → answered
# Who made the request, set by the server's authentication middleware.
REQUEST_USER = web.RequestKey("vnode.sandbox.user", UserInfo)
PROXIED_SUBRESOURCES = ("log", "exec", "attach", "portforward", "proxy")
_TRUE = ("true", "1", "True")


@dataclass(frozen=True)
class RestSettings:
    watch_timeout_seconds: float = 1800.0
    bookmark_interval_seconds: float = 60.0


def _json(obj: Any, code: int = 200) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), status=code, content_type="application/json")


def _table_version(accept: str) -> str | None:
    """The meta.k8s.io version of Table the client asked for, if it asked for one (kubectl get does)."""
    for part in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return params.get("v", "v1")
    return None


class RestApi:
    def __init__(self, registry: Registry, clock: Clock, settings: RestSettings, *,
                 proxy: ProxyHook, review: ReviewHook, token_request: TokenRequestHook) -> None:
        self.registry = registry
        self.clock = clock
        self.settings = settings
        self._proxy = proxy
        self._review = review
        self._token_request = token_request
        self._scale = ScaleSubresource(registry)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = parse_api_path(request.path, self.registry.resources)
        if target is None:
            raise status.path_not_found()
        if target.subresource in PROXIED_SUBRESOURCES:
            return await self._proxy(request, target)
        method = request.method
        if target.name is None:
            if method == "GET":
                return await self._list_or_watch(request, target)
            if method == "POST":
                return await self._create(request, target)
            if method == "DELETE":
                return await self._delete_collection(request, target)
            raise status.method_not_allowed()
        if target.rtype.namespaced and target.namespace is None:
            raise status.path_not_found()
        namespace = target.namespace or ""
        if target.subresource == "binding" and method == "POST":
            binding = await self._body(request)
            self.registry.bind(namespace, target.name, binding)
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                         201)
        if target.subresource == "token" and method == "POST":
            return _json(self._token_request(namespace, target.name, await self._body(request)), 201)
        if target.subresource == "scale":
            return await self._scale_request(request, target.rtype, namespace, target.name)
        if method == "GET":
            obj = self.registry.from_storage(target.rtype, self.registry.get(target.rtype, namespace, target.name))
            return self._render(request, target.rtype, obj)
        if method == "PUT":
            body = await self._body(request)
            key = self.registry.resources.storage_key(target.rtype)
            existed = self.registry.store.get(key, namespace, target.name) is not None
            updated = self.registry.update(target.rtype, namespace, target.name, body,
                                           subresource=target.subresource, dry_run=self._dry_run(request))
            return _json(updated, 200 if existed else 201)
        if method == "PATCH":
            body = await self._body(request)
            patched = self.registry.patch(target.rtype, namespace, target.name,
                                          request.headers.get("Content-Type", ""), body,
                                          subresource=target.subresource, dry_run=self._dry_run(request))
            return _json(patched)
        if method == "DELETE" and target.subresource is None:
            return await self._delete(request, target.rtype, namespace, target.name)
        raise status.method_not_allowed()

    async def _scale_request(self, request: web.Request, rtype: ResourceType, namespace: str,
                             name: str) -> web.Response:
        if request.method == "GET":
            return _json(self._scale.get(rtype, namespace, name))
        if request.method == "PUT":
            return _json(self._scale.update(rtype, namespace, name, await self._body(request),
                                            dry_run=self._dry_run(request)))
        if request.method == "PATCH":
            return _json(self._scale.patch(rtype, namespace, name, request.headers.get("Content-Type", ""),
                                           await self._body(request), dry_run=self._dry_run(request)))
        raise status.method_not_allowed()

    # Bodies and options

    @staticmethod
    async def _body(request: web.Request) -> Any:
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "application/json")
        if "protobuf" in content_type:
            try:
                return protobuf.decode_object(raw)
            except protobuf.UnsupportedProtobuf as exc:
                raise status.ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                                      f'format - accepted media types include: application/json, '
                                      f'application/yaml (got "{content_type}": {exc})') from exc
            except protobuf.ProtobufError as exc:
                raise status.bad_request(f"error decoding protobuf request body: {exc}") from exc
        try:
            if "yaml" in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw) if raw else {}
        except (ValueError, yaml.YAMLError) as exc:
            raise status.bad_request(f"error decoding request body: {exc}") from exc

    @staticmethod
    def _dry_run(request: web.Request) -> bool:
        return request.query.get("dryRun") == "All"

    def _render(self, request: web.Request, rtype: ResourceType, obj: Obj) -> web.Response:
        version = _table_version(request.headers.get("Accept", ""))
        if version is None:
            return _json(obj)
        return _json(self._table(request, rtype, [obj], version, None))

    def _table(self, request: web.Request, rtype: ResourceType, objects: list[Obj], version: str,
               list_meta: Obj | None) -> Obj:
        try:
            table = tables.to_table(rtype.group, rtype.resource, objects,
                                    include_object=request.query.get("includeObject", "Metadata"),
                                    now=self.clock.now(), list_metadata=list_meta)
        except ValueError as exc:
            raise status.bad_request(str(exc)) from exc
        table["apiVersion"] = f"meta.k8s.io/{version}"
        return table

    # Create

    async def _create(self, request: web.Request, target: ApiPath) -> web.Response:
        body = await self._body(request)
        if not target.rtype.stored:
            return _json(self._review(request, target.rtype, self.registry._check_body(target.rtype, body)), 201)
        if target.rtype.namespaced and target.namespace is None:
            raise status.path_not_found()
        user = request.get(REQUEST_USER)
        if target.rtype.kind == "CertificateSigningRequest" and user is not None and isinstance(body, dict):
            # kube-apiserver records who asked for a certificate; signers and approvers read it.
            spec = body.setdefault("spec", {})
            spec.update(username=user.username, uid=user.uid, groups=list(user.groups))
        created = self.registry.create(target.rtype, target.namespace or "", body,
                                       dry_run=self._dry_run(request))
        return _json(created, 201)

    # Delete

    async def _delete_options(self, request: web.Request) -> Obj:
        options: Obj = {}
        if request.can_read_body:
            body = await self._body(request)
            if isinstance(body, dict):
                options = body
        if "gracePeriodSeconds" in request.query:
            options["gracePeriodSeconds"] = request.query["gracePeriodSeconds"]
        return options

    async def _delete(self, request: web.Request, rtype: ResourceType, namespace: str, name: str) -> web.Response:
        options = await self._delete_options(request)
        grace = options.get("gracePeriodSeconds")
        obj, gone = self.registry.delete(
            rtype, namespace, name,
            grace_period_seconds=int(grace) if grace is not None else None,
            preconditions=options.get("preconditions") or {},
            dry_run=self._dry_run(request) or options.get("dryRun") == ["All"])
        # 202 Accepted tells the client the object still exists (graceful deletion or finalizers).
        return _json(obj, 200 if gone else 202)

    async def _delete_collection(self, request: web.Request, target: ApiPath) -> web.Response:
        if "deletecollection" not in target.rtype.verbs:
            raise status.method_not_allowed()
        options = await self._delete_options(request)
        grace = options.get("gracePeriodSeconds")
        items = list(self._select(request, target))
        for obj in items:
            meta = obj["metadata"]
            self.registry.delete(target.rtype, meta.get("namespace", ""), meta["name"],
                                 grace_period_seconds=int(grace) if grace is not None else None)
        return self._list_response(request, target.rtype, items, {"resourceVersion": self._rv()})

    # List and watch

    def _rv(self) -> str:
        return str(self.registry.store.resource_version)

    def _matcher(self, request: web.Request, rtype: ResourceType) -> Callable[[Obj], bool]:
        try:
            labels = selectors.parse_label_selector(request.query.get("labelSelector", ""))
            fields = selectors.parse_field_selector(rtype.group, rtype.resource,
                                                    request.query.get("fieldSelector", ""))
        except selectors.SelectorError as exc:
            raise status.bad_request(str(exc)) from exc
        return lambda obj: labels(obj["metadata"].get("labels") or {}) and fields(obj)

    def _select(self, request: web.Request, target: ApiPath) -> Iterable[Obj]:
        matches = self._matcher(request, target.rtype)
        key = self.registry.resources.storage_key(target.rtype)
        return (o for o in self.registry.store.iterate(key, target.namespace) if matches(o))

    async def _list_or_watch(self, request: web.Request, target: ApiPath) -> web.StreamResponse:
        if request.query.get("watch") in _TRUE:
            return await self._watch(request, target)
        self._check_list_version(request.query.get("resourceVersion", ""),
                                 request.query.get("resourceVersionMatch", ""))
        items = self._select(request, target)
        start = self._continue_from(request.query.get("continue", ""))
        limit = int(request.query.get("limit", "0") or 0)
        page: list[Obj] = []
        more = False
        for obj in items:
            meta = obj["metadata"]
            if start is not None and (meta.get("namespace", ""), meta["name"]) <= start:
                continue
            if limit and len(page) == limit:
                more = True
                break
            page.append(self.registry.from_storage(target.rtype, obj))
        list_meta: Obj = {"resourceVersion": self._rv()}
        if more:
            last = page[-1]["metadata"]
            token = json.dumps({"rv": self._rv(), "start": [last.get("namespace", ""), last["name"]]})
            list_meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
        return self._list_response(request, target.rtype, page, list_meta)

    def _check_list_version(self, wanted: str, match: str) -> None:
        """The store keeps no old snapshots: an exact list at an older version is 410, a future one 504."""
        if wanted in ("", "0"):
            return
        if not wanted.isdigit():
            raise status.bad_request(f"invalid resource version: {wanted}")
        current = self.registry.store.resource_version
        if int(wanted) > current:
            raise status.too_large_resource_version(int(wanted), current)
        if match == "Exact" and int(wanted) != current:
            raise status.expired(f"too old resource version: {wanted} ({current})")

    @staticmethod
    def _continue_from(token: str) -> tuple[str, str] | None:
        if not token:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            return data["start"][0], data["start"][1]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise status.bad_request(f"continue key is not valid: {exc}") from exc

    def _list_response(self, request: web.Request, rtype: ResourceType, items: list[Obj],
                       list_meta: Obj) -> web.Response:
        version = _table_version(request.headers.get("Accept", ""))
        if version is not None:
            return _json(self._table(request, rtype, items, version, list_meta))
        return _json({"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version, "metadata": list_meta,
                      "items": items})

    async def _watch(self, request: web.Request, target: ApiPath) -> web.StreamResponse:
        rv_param = request.query.get("resourceVersion", "")
        if rv_param not in ("", "0") and not rv_param.isdigit():
            raise status.bad_request(f"invalid resource version: {rv_param}")
        timeout = float(request.query.get("timeoutSeconds") or self.settings.watch_timeout_seconds)
        send_initial = request.query.get("sendInitialEvents") in _TRUE
        watch = WatchRequest(
            rtype=target.rtype,
            storage_key=self.registry.resources.storage_key(target.rtype),
            namespace=target.namespace,
            matches=self._matcher(request, target.rtype),
            since=None if rv_param in ("", "0") or send_initial else int(rv_param),
            send_initial_events=send_initial,
            allow_bookmarks=request.query.get("allowWatchBookmarks") in _TRUE,
            timeout_seconds=min(timeout, self.settings.watch_timeout_seconds),
            bookmark_interval_seconds=self.settings.bookmark_interval_seconds,
        )
        return await serve_watch(request, self.registry.store, watch, self._watch_view(request, target.rtype))

    def _watch_view(self, request: web.Request, rtype: ResourceType) -> ObjectView:
        version = _table_version(request.headers.get("Accept", ""))
        if version is not None:
            return lambda obj: self._table(request, rtype, [self.registry.from_storage(rtype, obj)], version, None)
        if rtype.key != self.registry.resources.storage_key(rtype):
            return lambda obj: self.registry.from_storage(rtype, obj)
        return None
