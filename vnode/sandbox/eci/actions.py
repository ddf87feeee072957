"""The ECI actions the emulator answers: request parameters in, response body (without RequestId) out.

`EciActions.handlers` maps each `Action` name to its handler. Handlers validate parameters as the SDK flattens them
(`group_params`, `container_params`), change the `GroupStore`, tell the runtime, and render with `views`. They must
not know about HTTP, signatures or throttling.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from vnode.clock import Clock
from vnode.sandbox.eci import params as p
from vnode.sandbox.eci import views
from vnode.sandbox.eci.container_params import container_spec
from vnode.sandbox.eci.errors import EciApiError, invalid
from vnode.sandbox.eci.group_params import RESTART_POLICIES, credentials, dns_config, group_draft, volume
from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec
from vnode.sandbox.eci.runtime import CHANGEABLE, TERMINAL
from vnode.sandbox.eci.store import GroupStore

# Handlers that wait on a runtime (logs, exec) are coroutines; the rest answer at once.
Handler = Callable[[p.Params], dict[str, Any] | Awaitable[dict[str, Any]]]
_TOKENS_KEPT = 10_000
# Container fields UpdateContainerGroup may change; a field not sent keeps its value.
_UPDATABLE = {"Image": "image", "Cpu": "cpu", "Memory": "memory", "Command": "commands", "Arg": "args",
              "EnvironmentVar": "env_vars", "WorkingDir": "working_dir", "ImagePullPolicy": "image_pull_policy",
              "Port": "ports", "VolumeMount": "volume_mounts"}


def incorrect_status(group: ContainerGroup, status: str, action: str) -> EciApiError:
    return EciApiError("IncorrectStatus", f"The current status of the resource does not support this operation: "
                       f"{action} on container group {group.id} in status {status}.")


class _Tokens:
    """ClientTokens of the change actions that succeeded: a retry gets the same answer and changes nothing."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, str] = OrderedDict()

    def seen(self, token: str | None, key: str) -> bool:
        return bool(token) and self._seen.get(token or "") == key

    def remember(self, token: str | None, key: str) -> None:
        if token:
            self._seen[token] = key
            if len(self._seen) > _TOKENS_KEPT:
                self._seen.popitem(last=False)


class EciActions:
    def __init__(self, store: GroupStore, clock: Clock, *, region_id: str, zone_id: str) -> None:
        self.store = store
        self.runtime = store.runtime
        self._clock = clock
        self._region_id = region_id
        self._zone_id = zone_id
        self._tokens = _Tokens()
        self.handlers: dict[str, Handler] = {
            "CreateContainerGroup": self.create_container_group,
            "DescribeContainerGroups": self.describe_container_groups,
            "DescribeContainerGroupStatus": self.describe_container_group_status,
            "DescribeContainerGroupEvents": self.describe_container_group_events,
            "DeleteContainerGroup": self.delete_container_group,
            "RestartContainerGroup": self.restart_container_group,
            "UpdateContainerGroup": self.update_container_group,
        }

    def create_container_group(self, params: p.Params) -> dict[str, Any]:
        draft = group_draft(params, region_id=self._region_id, zone_id=self._zone_id)
        try:
            self.runtime.check(draft)
        except ValueError as exc:
            raise invalid("Container", str(exc)) from exc
        group, _ = self.store.create(draft, params.get("ClientToken"))
        return {"ContainerGroupId": group.id}

    def describe_container_groups(self, params: p.Params) -> dict[str, Any]:
        limit = p.integer(params, "Limit", 20, low=1, high=20)
        name, status = params.get("ContainerGroupName"), params.get("Status")
        now = self._clock.now()

        def wanted(group: ContainerGroup) -> bool:
            return (not name or group.name == name) and (not status or self.runtime.group_status(group, now) == status)

        groups = self.store.select(ids=p.id_list(params, "ContainerGroupIds"), tags=p.tags(params), where=wanted)
        page = self.store.page(groups, params.get("NextToken"), limit)
        return {"TotalCount": page.total, "NextToken": page.next_token,
                "ContainerGroups": [views.group_view(g, self.runtime.snapshot(g, now)) for g in page.groups]}

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
                                   where=lambda g: since is None or self.runtime.last_transition(g, now) >= since)
        page = self.store.page(groups, params.get("NextToken"), limit)
        return {"TotalCount": page.total, "NextToken": page.next_token,
                "Data": [views.status_view(g, self.runtime.snapshot(g, now)) for g in page.groups]}

    def describe_container_group_events(self, params: p.Params) -> dict[str, Any]:
        limit = p.integer(params, "Limit", 200, low=1, high=200)
        since, now = self._since(params), self._clock.now()
        source = params.get("EventSource")
        if source and source not in ("EciService", "K8sAgent"):
            raise invalid("EventSource", "EciService or K8sAgent")
        groups = self.store.select(ids=p.id_list(params, "ContainerGroupIds"), tags=p.tags(params))
        items = [views.events_view(g, self.runtime.snapshot(g, now), since) for g in groups]
        if source == "K8sAgent":  # every emulated event comes from EciService
            items = [{**item, "Events": []} for item in items]
        items = [item for item in items if item["Events"]][:limit]
        return {"TotalCount": len(items), "Data": items}

    def delete_container_group(self, params: p.Params) -> dict[str, Any]:
        group_id = p.required(params, "ContainerGroupId")
        token = params.get("ClientToken")
        if self._tokens.seen(token, f"delete:{group_id}"):
            return {}  # a retry of a delete that succeeded: the same answer again
        self.store.delete(group_id)  # the store tells the runtime to stop it
        self._tokens.remember(token, f"delete:{group_id}")
        return {}

    def restart_container_group(self, params: p.Params) -> dict[str, Any]:
        group = self.store.get(p.required(params, "ContainerGroupId"))
        token = params.get("ClientToken")
        if self._tokens.seen(token, f"restart:{group.id}"):
            return {}
        self._changeable(group, "RestartContainerGroup")
        self.runtime.restart(group)
        self._tokens.remember(token, f"restart:{group.id}")
        return {}

    def update_container_group(self, params: p.Params) -> dict[str, Any]:
        group = self.store.get(p.required(params, "ContainerGroupId"))
        token = params.get("ClientToken")
        if self._tokens.seen(token, f"update:{group.id}"):
            return {}
        self._changeable(group, "UpdateContainerGroup")
        updated = updated_group(group, params)
        self.store.replace(updated)
        # Tags are the instance's metadata: changing only them restarts nothing (ECI recreates containers for the
        # rest, as a restart does).
        if replace(updated, tags=group.tags) != group:
            self.runtime.update(updated)
        self._tokens.remember(token, f"update:{group.id}")
        return {}

    def release_spot(self, group_id: str, notice_seconds: float) -> None:
        """Reclaim a spot group: a SpotToBeReleased warning now, Failed (SpotReleased) after `notice_seconds`."""
        group = self.store.get(group_id)
        if group.spot.strategy == "NoSpot":
            raise invalid("ContainerGroupId", f"container group {group_id} is not a spot instance")
        status = self.runtime.group_status(group, self._clock.now())
        if status in TERMINAL:
            raise incorrect_status(group, status, "spot release")
        self.runtime.release(group, notice_seconds)

    def _changeable(self, group: ContainerGroup, action: str) -> None:
        status = self.runtime.group_status(group, self._clock.now())
        if status not in CHANGEABLE:
            raise incorrect_status(group, status, action)


def updated_group(group: ContainerGroup, params: p.Params) -> ContainerGroup:
    """`group` with what UpdateContainerGroup's parameters change (containers are matched by name)."""
    changes: dict[str, Any] = {}
    policy = params.get("RestartPolicy")
    if policy:
        if policy not in RESTART_POLICIES:
            raise invalid("RestartPolicy", f"one of {', '.join(RESTART_POLICIES)}")
        changes["restart_policy"] = policy
    for name, attribute in (("Cpu", "cpu"), ("Memory", "memory")):
        value = p.number(params, name)
        if value is not None:
            if value <= 0:
                raise invalid(name, "must be positive")
            changes[attribute] = value
    if any(key.startswith("Tag.") for key in params):
        changes["tags"] = tuple(p.tags(params))
    if any(key.startswith("Volume.") for key in params):
        changes["volumes"] = tuple(volume(v, f"Volume.{n}") for n, v in enumerate(p.indexed(params, "Volume"),
                                                                                  start=1))
    if any(key.startswith("DnsConfig.") for key in params):
        changes["dns_config"] = dns_config(params)
    if any(key.startswith("ImageRegistryCredential.") for key in params):
        changes["registry_credentials"] = credentials(params)
    names = [v.name for v in changes.get("volumes", group.volumes)]
    for prefix, attribute in (("Container", "containers"), ("InitContainer", "init_containers")):
        specs: tuple[ContainerSpec, ...] = getattr(group, attribute)
        for n, fields in enumerate(p.indexed(params, prefix), start=1):
            specs = _merged(specs, fields, f"{prefix}.{n}", names, init=prefix == "InitContainer")
        changes[attribute] = specs
    return replace(group, **changes)


def _merged(specs: tuple[ContainerSpec, ...], fields: dict[str, str], where: str, volumes: list[str], *,
            init: bool) -> tuple[ContainerSpec, ...]:
    name = p.present(fields, "Name")
    old = next((s for s in specs if s.name == name), None)
    if old is None:
        raise invalid(f"{where}.Name", f"no container named {name!r} in this container group")
    # Parse the sent fields over the old ones, so validation is create's; then keep only the updatable ones sent.
    fresh = container_spec({"Image": old.image, **fields}, where, volumes=volumes, init=init)
    sent = {attribute for key, attribute in _UPDATABLE.items() if any(k.split(".")[0] == key for k in fields)}
    merged = replace(old, **{attribute: getattr(fresh, attribute) for attribute in sent})
    if "env_vars" in sent:
        merged = replace(merged, env=fresh.env)
    return tuple(merged if s.name == name else s for s in specs)
