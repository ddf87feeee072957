"""Helpers shared by the log and exec tests: an `EciClient` on the emulator and a group that is Running."""

from __future__ import annotations

from typing import Any

from vnode.clock import ManualClock
from vnode.providers.eci.client import EciClient

# The sim runtime's defaults: Scheduling 1 s, then Pending 2 s, then Running.
SECONDS_TO_RUNNING = 3.5


def group_params(name: str, *, log: str = "", command: tuple[str, ...] = ("sleep", "3600"),
                 restart_policy: str = "Never", env: dict[str, str] | None = None) -> dict[str, Any]:
    variables = {"VNODE_SIM_LOG": log, **(env or {})} if log else dict(env or {})
    return {"ContainerGroupName": name, "RestartPolicy": restart_policy,
            "Container": [{"Name": "main", "Image": "busybox", "Command": list(command),
                           "EnvironmentVar": [{"Key": k, "Value": v} for k, v in variables.items()]}]}


async def running_group(client: EciClient, clock: ManualClock, name: str, **kwargs: Any) -> str:
    """Create a group and move the emulator's clock until its container runs."""
    group_id = await client.create_container_group(group_params(name, **kwargs))
    await clock.advance(SECONDS_TO_RUNNING)
    return group_id
