"""The event log: stream `<NS>_EVENTS`, subject `<ns>.events.<queue>.<type>`, limits retention.

Every lifecycle event is appended here (for the polling endpoint, SSE and webhooks); reads page
through it by stream sequence, which doubles as the opaque cursor. An event id can stand in for a
cursor: `locate` finds its sequence from the time in its UUIDv7 (direct get by start time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from nats.aio.msg import Msg

from ojs_nats.model import ids
from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.coalesce import GroupCommit
from ojs_nats.storage.connection import Connection

#: Stored events examined per read at most (filters are applied to these).
MAX_SCANNED = 4096
_BATCH = 256
#: How far an event's stored time (the NATS server's clock) may lie from the time in its id (the
#: gateway's clock, taken just before the group commit that stores it): the window `locate`
#: searches around that time.
EVENT_TIME_SKEW_MS = 1000
#: Where `locate` resumes when the event is not found near its time: this much before it, so a
#: clock that is off by up to this much replays events rather than skipping any.
FALLBACK_SKEW_MS = 60_000


class EventLog:
    def __init__(self, conn: Connection, names: n.Names, batches: BatchReplies) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        self._commits: GroupCommit[tuple[str, bytes]] = GroupCommit(self._send)

    async def append(self, queue: str, event: dict[str, Any]) -> None:
        await self.append_many(queue, [event])

    async def append_many(self, queue: str, events: list[dict[str, Any]]) -> None:
        """Append in order; events appended concurrently elsewhere go in the same send."""
        await self._commits.submit(
            [(self._names.event_subject(queue, e["type"]), orjson.dumps(e)) for e in events]
        )

    async def append_worker(self, event: dict[str, Any]) -> None:
        """Append a worker event (no queue)."""
        await self._commits.submit(
            [(self._names.worker_event_subject(event["type"]), orjson.dumps(event))]
        )

    async def _send(self, items: list[tuple[str, bytes]]) -> None:
        await self._conn.store_many([(subject, payload, None) for subject, payload in items])

    async def locate(self, event_id: str, at_ms: int) -> int:
        """The sequence to read after to resume after event `event_id`, stamped at `at_ms`.

        Its own sequence when it is stored within `EVENT_TIME_SKEW_MS` of `at_ms` (and within
        `MAX_SCANNED` events of the window's start). Otherwise (aged out, never stored, or
        stamped by a clock further off) the position just before the first event stored at or
        after `at_ms - FALLBACK_SKEW_MS`: nothing after the event is skipped unless the clocks
        disagree by more than that; events before it may come again (event delivery is
        at-least-once, ojs-events.md §9.1).
        """
        found = await self._find(event_id, at_ms)
        if found is not None:
            return found
        stream, everything = self._names.events_stream, self._names.event_filter(None, None)
        start = ids.format_ts(max(0, at_ms - FALLBACK_SKEW_MS))
        msgs = await self._batches.get_since(stream, everything, start, 1)
        return _sequence(msgs[0], 1) - 1 if msgs else await self._last_sequence()

    async def _find(self, event_id: str, at_ms: int) -> int | None:
        """The sequence of event `event_id` if stored near `at_ms`, else None."""
        stream, everything = self._names.events_stream, self._names.event_filter(None, None)
        start = ids.format_ts(max(0, at_ms - EVENT_TIME_SKEW_MS))
        msgs = await self._batches.get_since(stream, everything, start, _BATCH)
        if not msgs:
            return None
        needle = b'"id":' + orjson.dumps(event_id)
        first = _sequence(msgs[0], 1)
        scanned, seq = 0, first
        while msgs:
            for msg in msgs:
                seq = _sequence(msg, seq + 1)
                if needle in msg.data and orjson.loads(msg.data).get("id") == event_id:
                    return seq
                scanned += 1
                if scanned >= MAX_SCANNED or _stored_ms(msg) > at_ms + EVENT_TIME_SKEW_MS:
                    return None
            if len(msgs) < _BATCH:
                break
            msgs = await self._batches.get_many(stream, everything, seq + 1, _BATCH)
        return None

    async def _last_sequence(self) -> int:
        info = await self._conn.api(f"$JS.API.STREAM.INFO.{self._names.events_stream}")
        return int(info.get("state", {}).get("last_seq", 0))

    async def read(
        self,
        types: Iterable[str],
        queues: Iterable[str],
        after_seq: int,
        limit: int,
        job_types: Iterable[str] = (),
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """Events after `after_seq` matching all filters given: (events, last sequence examined,
        more left). `types` entries may end in `*` (prefix match)."""
        type_set, queue_set, job_type_set = set(types), set(queues), set(job_types)
        subject = self._names.event_filter(
            next(iter(queue_set)) if len(queue_set) == 1 else None,
            next(iter(type_set))
            if len(type_set) == 1 and "*" not in next(iter(type_set))
            else None,
        )
        found: list[dict[str, Any]] = []
        cursor, scanned = after_seq, 0
        while len(found) < limit and scanned < MAX_SCANNED:
            msgs = await self._batches.get_many(
                self._names.events_stream, subject, cursor + 1, _BATCH
            )
            if not msgs:
                return found, cursor, False
            for msg in msgs:
                scanned += 1
                seq = _sequence(msg, cursor + 1)
                event = orjson.loads(msg.data)
                if _matches(event, type_set, queue_set, job_type_set):
                    found.append(event)
                cursor = seq
                if len(found) >= limit:
                    return found, cursor, True
            if len(msgs) < _BATCH:
                return found, cursor, False
        return found, cursor, True


def _sequence(msg: Msg, default: int) -> int:
    return int((msg.headers or {}).get("Nats-Sequence", default))


def _stored_ms(msg: Msg) -> int:
    """When the server stored `msg` (0 if the reply does not say)."""
    stamp = (msg.headers or {}).get("Nats-Time-Stamp")
    try:
        return ids.parse_ts(stamp) if stamp else 0
    except ValueError:
        return 0


def _matches(event: dict[str, Any], types: set[str], queues: set[str], job_types: set[str]) -> bool:
    data = event.get("data") or {}
    if queues and data.get("queue") not in queues:
        return False
    if job_types and data.get("job_type") not in job_types:
        return False
    if not types:
        return True
    kind = str(event.get("type", ""))
    return any(kind == t or (t.endswith("*") and kind.startswith(t[:-1])) for t in types)
