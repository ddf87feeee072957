"""The emulator's region: the container groups that exist, ClientToken idempotency, filtering, paging, retention.

`GroupStore` owns the set of groups and when they are forgotten: a finished group is kept `retention_seconds`
(ECI: 1 hour) after it ends, then dropped, as DescribeContainerGroups stops returning it; its runtime is told to
stop it whenever it is forgotten (deleted or expired). It must not render responses or parse parameters; when a
group ended comes from its runtime.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from vnode.clock import Clock
from vnode.sandbox.eci.errors import EciApiError, invalid
from vnode.sandbox.eci.model import ContainerGroup
from vnode.sandbox.eci.runtime import GroupRuntime

_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Page:
    groups: list[ContainerGroup]
    total: int
    next_token: str


def not_found(group_id: str) -> EciApiError:
    # The code is [unverified]: ECI's docs list no NotFound for these actions.
    return EciApiError("InvalidContainerGroupId.NotFound", f"The specified container group {group_id} does not "
                       "exist.")


class GroupStore:
    def __init__(self, clock: Clock, runtime: GroupRuntime, *, retention_seconds: float = 3600.0) -> None:
        self._clock = clock
        self.runtime = runtime
        self._retention_seconds = retention_seconds
        self._groups: dict[str, ContainerGroup] = {}  # insertion order = creation order
        self._tokens: dict[str, str] = {}  # CreateContainerGroup ClientToken → group id
        self._token_of: dict[str, str] = {}  # group id → its ClientToken
        self._seq = 0

    def create(self, draft: ContainerGroup, client_token: str | None) -> tuple[ContainerGroup, bool]:
        """Store a new group built from `draft` (id, seq, creation time and IP are assigned here) and start it on
        the runtime. With a ClientToken seen before, the group created then is returned instead (created=False): a
        retried create never makes two."""
        self.prune()
        if client_token:
            if len(client_token) > 64 or not client_token.isascii():
                raise invalid("ClientToken", "at most 64 ASCII characters")
            known = self._groups.get(self._tokens.get(client_token, ""))
            if known is not None:
                return known, False
        self._seq += 1
        group = replace(draft, id="eci-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20)), seq=self._seq,
                        created=self._clock.now(),
                        intranet_ip=f"10.{(self._seq >> 16) & 255}.{(self._seq >> 8) & 255}.{self._seq & 255}")
        self._groups[group.id] = group
        if client_token:
            self._tokens[client_token] = group.id
            self._token_of[group.id] = client_token
        self.runtime.start(group)
        return group, True

    def replace(self, group: ContainerGroup) -> None:
        """Store a changed version of a known group (UpdateContainerGroup); the runtime is told by the caller."""
        self.get(group.id)
        self._groups[group.id] = group

    def get(self, group_id: str) -> ContainerGroup:
        self.prune()
        group = self._groups.get(group_id)
        if group is None:
            raise not_found(group_id)
        return group

    def delete(self, group_id: str) -> None:
        self.get(group_id)
        self._forget(group_id)

    def __len__(self) -> int:
        return len(self._groups)

    def select(self, *, ids: list[str] | None = None, tags: Iterable[tuple[str, str]] = (),
               where: Callable[[ContainerGroup], bool] | None = None) -> list[ContainerGroup]:
        """Groups matching every given filter (ids, each tag pair, `where`), oldest first."""
        self.prune()
        wanted_tags = set(tags)
        candidates: Iterable[ContainerGroup]
        if ids is not None:
            candidates = sorted((self._groups[i] for i in set(ids) if i in self._groups), key=lambda g: g.seq)
        else:
            candidates = self._groups.values()
        return [g for g in candidates
                if wanted_tags <= set(g.tags) and (where is None or where(g))]

    @staticmethod
    def page(groups: list[ContainerGroup], next_token: str | None, limit: int) -> Page:
        """One page of `groups` (in seq order); NextToken is the seq to resume after, empty on the last page."""
        start = 0
        if next_token:
            try:
                after = int(next_token, 16)
            except ValueError as exc:
                raise invalid("NextToken", "not a token this API returned") from exc
            start = next((i for i, g in enumerate(groups) if g.seq > after), len(groups))
        chunk = groups[start:start + limit]
        more = start + limit < len(groups)
        return Page(chunk, len(groups), format(chunk[-1].seq, "x") if more and chunk else "")

    def prune(self) -> None:
        """Forget groups that ended more than `retention_seconds` ago."""
        now = self._clock.now()
        horizon = now - timedelta(seconds=self._retention_seconds)
        expired = []
        for group in self._groups.values():
            end = self.runtime.ended_at(group, now)
            if end is not None and end < horizon:
                expired.append(group.id)
        for group_id in expired:
            self._forget(group_id)

    def _forget(self, group_id: str) -> None:
        group = self._groups.pop(group_id)
        token = self._token_of.pop(group_id, None)
        if token is not None:
            del self._tokens[token]
        self.runtime.stop(group)
