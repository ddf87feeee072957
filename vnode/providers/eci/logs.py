"""`EciLogReader`: a container's log through DescribeContainerLog, as one snapshot or followed by polling.

ECI returns a log as one string per call, with no cursor and no streaming (eci-wire.md §2), so `kubectl logs -f` is
emulated: poll every `poll_seconds` with `Timestamps=true` and `StartTime` at the last line's timestamp, drop the
lines already shown (same timestamp and text), strip the timestamps unless the user asked for them. Assumptions:
- A timestamped line is `<RFC 3339 time> <text>`, as a kubelet writes it [unverified for ECI]. A line whose prefix
  does not parse keeps the time of the line before it.
- `StartTime` is sent with whole seconds (floored), which ECI surely accepts; finer `since_time` filtering is done
  here on the lines' own timestamps, and then so are `limit_bytes` (ECI's would count lines this filter drops).
- Without `tail_lines` the whole log is asked for: `Tail=2000` and `LimitBytes=1048576`, ECI's maxima (a larger
  `tail_lines` gets 2000 lines too).
- A follow poll returns at most 2000 lines (ECI keeps the last ones): a container writing more than that between
  two polls loses the excess. A gap is logged when a full answer shares no line with what was shown.
It owns the polling loop of one read and must not know about pods or HTTP.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vnode.clock import Clock, rfc3339
from vnode.errors import NotFound, Retryable
from vnode.providers.eci.client import EciClient
from vnode.providers.streams import LogOptions

log = logging.getLogger(__name__)

MAX_TAIL = 2000  # DescribeContainerLog's Tail maximum
MAX_BYTES = 1024 * 1024  # its LimitBytes maximum and the cap on any answer


@dataclass(frozen=True)
class LogLine:
    stamp: str  # the timestamp as ECI wrote it ("" when the line had none)
    time: datetime | None
    text: bytes  # the line after the timestamp and its space, with its newline if it had one

    def render(self, timestamps: bool) -> bytes:
        return (self.stamp.encode() + b" " + self.text) if timestamps and self.stamp else self.text


def parse_lines(content: bytes, previous: datetime | None = None) -> list[LogLine]:
    """Split a timestamped answer into lines; a line without a parseable prefix inherits the last time seen."""
    lines = []
    for raw in content.splitlines(keepends=True):
        stamp, _, rest = raw.partition(b" ")
        time = _parse_time(stamp)
        if time is None:
            lines.append(LogLine("", previous, raw))
        else:
            previous = time
            lines.append(LogLine(stamp.decode(), time, rest))
    return lines


def _parse_time(stamp: bytes) -> datetime | None:
    if not stamp[:4].isdigit() or len(stamp) < 20:
        return None
    text = stamp.decode(errors="replace").replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python keeps microseconds: cut a nanosecond fraction to 6 digits, keeping the zone
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class FollowState:
    """What a follower has shown: the newest line's time, and the lines from the second it falls in on (where the
    next poll's window starts), so that their repeats are dropped."""

    def __init__(self, since: datetime | None) -> None:
        self.since = since
        self.newest: datetime | None = None
        self._shown: Counter[tuple[str, bytes]] = Counter()
        self._times: dict[tuple[str, bytes], datetime | None] = {}

    def window_start(self) -> datetime | None:
        """The StartTime of the next poll: the newest time shown (else `since`), floored to whole seconds."""
        moment = self.newest or self.since
        return None if moment is None else moment.replace(microsecond=0)

    def fresh(self, lines: Iterable[LogLine]) -> list[LogLine]:
        """The lines not shown before, in order; remembers them."""
        floor = self.window_start()
        repeats = Counter(self._shown)
        found = []
        for line in lines:
            if line.time is not None and (
                    (floor is not None and line.time < floor) or (self.since is not None and line.time < self.since)):
                continue  # before the window: shown already, or excluded by since_time
            key = (line.stamp, line.text)
            if repeats[key] > 0:  # the same record again: answers overlap in the window's first second
                repeats[key] -= 1
                continue
            found.append(line)
        for line in found:
            key = (line.stamp, line.text)
            self._shown[key] += 1
            self._times[key] = line.time
            if line.time is not None and (self.newest is None or line.time > self.newest):
                self.newest = line.time
        start = self.window_start()
        for key, time in list(self._times.items()):
            if start is not None and time is not None and time < start:
                del self._times[key], self._shown[key]
        return found


class EciLogReader:
    def __init__(self, client: EciClient, clock: Clock, *, poll_seconds: float) -> None:
        self._client = client
        self._clock = clock
        self._poll_seconds = poll_seconds

    def read(self, group_id: str, container: str, options: LogOptions, *,
             still_running: Callable[[], bool]) -> AsyncIterator[bytes]:
        """The log as `options` select it; with `follow`, new lines until `still_running()` turns false (one
        last poll follows) or the caller stops iterating. Raises NotFound for an unknown group or container."""
        if options.follow and not options.previous:
            return self._follow(group_id, container, options, still_running)
        return self._snapshot(group_id, container, options)

    async def _call(self, group_id: str, container: str, params: dict[str, Any]) -> bytes:
        answer = await self._client.call("DescribeContainerLog", {"ContainerGroupId": group_id,
                                                                  "ContainerName": container, **params},
                                         mutating=False)
        content = answer.get("Content") or ""
        return content.encode() if isinstance(content, str) else b""

    async def _snapshot(self, group_id: str, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        since = options.since_time
        if since is None or since.microsecond == 0:
            # ECI can select exactly this: pass the options through.
            content = await self._call(group_id, container, {
                "Tail": _tail(options), "StartTime": rfc3339(since) if since else None,
                "LimitBytes": min(options.limit_bytes or MAX_BYTES, MAX_BYTES), "Timestamps": options.timestamps,
                "LastTime": options.previous or None})
        else:
            content = await self._call(group_id, container, _timestamped(options, since))
            lines = FollowState(since).fresh(parse_lines(content))
            content = b"".join(line.render(options.timestamps) for line in lines)
            if options.limit_bytes is not None:
                content = content[:options.limit_bytes]
        if content:
            yield content

    async def _follow(self, group_id: str, container: str, options: LogOptions,
                      still_running: Callable[[], bool]) -> AsyncIterator[bytes]:
        state = FollowState(options.since_time)
        budget = options.limit_bytes
        params = _timestamped(options, options.since_time)
        first = True
        while True:
            running = still_running()  # asked before the poll: the poll after the end shows the last lines
            try:
                content = await self._call(group_id, container, params)
            except (Retryable, NotFound) as exc:
                if first:
                    raise
                if isinstance(exc, NotFound):
                    return  # the group went away while followed: its log ends here
                log.warning("ECI log poll for %s/%s failed; retrying in %s s: %s", group_id, container,
                            self._poll_seconds, exc)
                content = None
            if content is not None:
                lines = parse_lines(content, state.newest)
                fresh = state.fresh(lines)
                if not first and len(fresh) == len(lines) >= MAX_TAIL:
                    log.warning("ECI log of %s/%s: more than %d lines between two polls; some were lost",
                                group_id, container, MAX_TAIL)
                chunk = b"".join(line.render(options.timestamps) for line in fresh)
                if budget is not None:
                    chunk, budget = chunk[:budget], budget - min(len(chunk), budget)
                if chunk:
                    yield chunk
                if budget == 0:
                    return
                first = False
                start = state.window_start()
                params = {**params, "Tail": MAX_TAIL, "StartTime": rfc3339(start) if start else None}
            if not running:
                return
            await self._clock.sleep(self._poll_seconds)


def _tail(options: LogOptions) -> int:
    return MAX_TAIL if options.tail_lines is None else max(0, min(options.tail_lines, MAX_TAIL))


def _timestamped(options: LogOptions, since: datetime | None) -> dict[str, Any]:
    """Parameters for an answer filtered here: timestamps on, every byte ECI gives, StartTime floored."""
    start = since.replace(microsecond=0) if since is not None else None
    return {"Tail": _tail(options), "StartTime": rfc3339(start) if start else None, "LimitBytes": MAX_BYTES,
            "Timestamps": True, "LastTime": options.previous or None}

