"""The ECI actions the emulator answers: request parameters in, response body (without RequestId) out.

`EciActions.handlers` maps each `Action` name to its handler. Handlers validate parameters as the SDK flattens them,
change the `GroupStore` and render with `views`. They must not know about HTTP, signatures or throttling.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from vnode.clock import Clock
from vnode.sandbox.eci import params as p
from vnode.sandbox.eci import views
from vnode.sandbox.eci.errors import invalid, missing
from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec
from vnode.sandbox.eci.store import GroupStore

# Handlers that wait on a runtime (logs, exec) are coroutines; the rest answer at once.
Handler = Callable[[p.Params], dict[str, Any] | Awaitable[dict[str, Any]]]
_GROUP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,126}[a-z0-9])$")
_RESTART_POLICIES = ("Always", "Never", "OnFailure")
_DELETE_TOKENS_KEPT = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def container_spec(fields: dict[str, str], where: str) -> ContainerSpec:
    """One `Container.N.*` (or `InitContainer.N.*`) group of parameters, keys relative to `where`."""
    for name in ("Image", "Name"):
        if not fields.get(name):
            raise missing(f"{where}.{name}")
    ports = []
    for n, port in enumerate(p.indexed(fields, "Port"), start=1):
        number = p.integer(port, "Port", 0, low=1, high=65535)
        if not number:
            raise missing(f"{where}.Port.{n}.Port")
        ports.append((number, port.get("Protocol") or "TCP"))
    spec = ContainerSpec(
        name=fields["Name"], image=fields["Image"], cpu=p.number(fields, "Cpu", 0.0) or 0.0,
        memory=p.number(fields, "Memory", 0.0) or 0.0, commands=tuple(p.listed(fields, "Command")),
        args=tuple(p.listed(fields, "Arg")),
        env=tuple((e.get("Key", ""), e.get("Value", "")) for e in p.indexed(fields, "EnvironmentVar")),
        working_dir=fields.get("WorkingDir", ""), image_pull_policy=fields.get("ImagePullPolicy") or "IfNotPresent",
        ports=tuple(ports), stdin=p.boolean(fields, "Stdin"), tty=p.boolean(fields, "Tty"))
    try:
        spec.sim_outcome()
    except ValueError as exc:
        raise invalid(f"{where}.EnvironmentVar", f"sim outcome: {exc}") from exc
    return spec


class EciActions:
    def __init__(self, store: GroupStore, clock: Clock, *, region_id: str, zone_id: str) -> None:
        self.store = store
        self._clock = clock
        self._region_id = region_id
        self._zone_id = zone_id
        self._delete_tokens: OrderedDict[str, str] = OrderedDict()  # DeleteContainerGroup ClientToken → group id
        self.handlers: dict[str, Handler] = {
            "CreateContainerGroup": self.create_container_group,
            "DescribeContainerGroups": self.describe_container_groups,
            "DescribeContainerGroupStatus": self.describe_container_group_status,
            "DescribeContainerGroupEvents": self.describe_container_group_events,
            "DeleteContainerGroup": self.delete_container_group,
        }

    def create_container_group(self, params: p.Params) -> dict[str, Any]:
        name = p.required(params, "ContainerGroupName")
        if not _GROUP_NAME.match(name):
            raise invalid("ContainerGroupName", "2-128 lowercase letters, digits and hyphens, starting and ending "
                          "with a letter or digit")
        containers = tuple(container_spec(c, f"Container.{n}")
                           for n, c in enumerate(p.indexed(params, "Container"), start=1))
        if not containers:
            raise missing("Container.1.Image")
        if len(containers) > 20:
            raise invalid("Container", "at most 20 containers")
        init = tuple(container_spec(c, f"InitContainer.{n}")
                     for n, c in enumerate(p.indexed(params, "InitContainer"), start=1))
        restart_policy = params.get("RestartPolicy") or "Always"
        if restart_policy not in _RESTART_POLICIES:
            raise invalid("RestartPolicy", f"one of {', '.join(_RESTART_POLICIES)}")
        # Group size: given, else the sum of the containers', else ECI's default of 2 vCPU / 4 GiB.
        cpu = p.number(params, "Cpu") or sum(c.cpu for c in containers) or 2.0
        memory = p.number(params, "Memory") or sum(c.memory for c in containers) or 4.0
        volumes = tuple((v.get("Name", ""), v.get("Type", "")) for v in p.indexed(params, "Volume"))
        extra = tuple((k, params[k]) for k in ("VSwitchId", "SecurityGroupId", "InstanceType", "SpotStrategy",
                                               "RamRoleName", "ResourceGroupId") if params.get(k))
        draft = ContainerGroup(
            id="", name=name, seq=0, region_id=self._region_id, zone_id=params.get("ZoneId") or self._zone_id,
            cpu=cpu, memory=memory, restart_policy=restart_policy, tags=tuple(p.tags(params)),
            containers=containers, init_containers=init, volumes=volumes, created=_EPOCH, pending_at=_EPOCH,
            running_at=_EPOCH, intranet_ip="", extra=extra)
        group, _ = self.store.create(draft, params.get("ClientToken"))
        return {"ContainerGroupId": group.id}

    def describe_container_groups(self, params: p.Params) -> dict[str, Any]:
        limit = p.integer(params, "Limit", 20, low=1, high=20)
        name, status = params.get("ContainerGroupName"), params.get("Status")
        now = self._clock.now()
        groups = self.store.select(
            ids=p.id_list(params, "ContainerGroupIds"), tags=p.tags(params),
            where=lambda g: (not name or g.name == name) and (not status or g.status(now) == status))
        page = self.store.page(groups, params.get("NextToken"), limit)
        return {"TotalCount": page.total, "NextToken": page.next_token,
                "ContainerGroups": [views.group_view(g, now) for g in page.groups]}

    def _since(self, params: p.Params) -> datetime | None:
        # SinceSecond: only what changed in the last N seconds, N in 60..3600 (eci-wire.md §3).
        if not params.get("SinceSecond"):
            return None
        seconds = p.integer(params, "SinceSecond", 0, low=60, high=3600)
        return self._clock.now() - timedelta(seconds=seconds)

    def describe_container_group_status(self, params: p.Params) -> dict[str, Any]:
        limit = p.integer(params, "Limit", 200, low=1, high=200)
        since, now = self._since(params), self._clock.now()
        groups = self.store.select(ids=p.id_list(params, "ContainerGroupIds"), tags=p.tags(params),
                                   where=lambda g: since is None or g.last_transition(now) >= since)
        page = self.store.page(groups, params.get("NextToken"), limit)
        return {"TotalCount": page.total, "NextToken": page.next_token,
                "Data": [views.status_view(g, now) for g in page.groups]}

    def describe_container_group_events(self, params: p.Params) -> dict[str, Any]:
        limit = p.integer(params, "Limit", 200, low=1, high=200)
        since, now = self._since(params), self._clock.now()
        source = params.get("EventSource")
        if source and source not in ("EciService", "K8sAgent"):
            raise invalid("EventSource", "EciService or K8sAgent")
        groups = self.store.select(ids=p.id_list(params, "ContainerGroupIds"), tags=p.tags(params))
        items = [views.events_view(g, now, since) for g in groups]
        if source == "K8sAgent":  # every emulated event comes from EciService
            items = [{**item, "Events": []} for item in items]
        items = [item for item in items if item["Events"]][:limit]
        return {"TotalCount": len(items), "Data": items}

    def delete_container_group(self, params: p.Params) -> dict[str, Any]:
        group_id = p.required(params, "ContainerGroupId")
        token = params.get("ClientToken")
        if token and self._delete_tokens.get(token) == group_id:
            return {}  # a retry of a delete that succeeded: the same answer again
        self.store.delete(group_id)
        if token:
            self._delete_tokens[token] = group_id
            if len(self._delete_tokens) > _DELETE_TOKENS_KEPT:
                self._delete_tokens.popitem(last=False)
        return {}
