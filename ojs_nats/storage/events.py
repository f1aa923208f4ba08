"""The event log: stream `<NS>_EVENTS`, subject `<ns>.events.<queue>.<type>`, limits retention.

Every lifecycle event is appended here (for the polling endpoint, SSE and webhooks). A stored
message holds one event (a JSON object) or several of the same subject (a JSON array, in the
order they happened): under load a group commit gathers dozens of events of one queue and type,
and one message for them costs JetStream and the gateway a fraction of one message each. Reads
page through the log by `Position` (stream sequence, events of that message already read),
which doubles as the opaque cursor. An event id can stand in for a cursor: `locate` finds its
position from the time in its UUIDv7 (direct get by start time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, NamedTuple

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
#: Most events, and bytes of them, one stored message holds.
MAX_EVENTS_PER_MESSAGE = 100
MAX_MESSAGE_BYTES = 64 * 1024


class Position(NamedTuple):
    """Where a read resumes: at stored message `seq`, after its first `skip` events."""

    seq: int
    skip: int = 0

    @classmethod
    def after(cls, seq: int) -> Position:
        """Just after the whole of message `seq`."""
        return cls(seq + 1, 0)


@dataclasses.dataclass(slots=True)
class _Pack:
    subject: str
    payloads: list[bytes]
    size: int = 0


def pack(items: Iterable[tuple[str, str, bytes]]) -> list[tuple[str, bytes]]:
    """(subject, what the event is about, encoded event) as stored messages: the events of one
    subject together, every job's (or worker's) events still in the order given
    (ojs-events.md §9.2: a job's events in lifecycle order)."""
    packs: list[_Pack] = []
    taking: dict[str, int] = {}  # subject -> its pack still taking events
    latest: dict[str, int] = {}  # about -> the pack holding its latest event
    for subject, about, payload in items:
        index = taking.get(subject)
        if (
            index is None
            or index < latest.get(about, -1)  # it would come before an earlier event of about
            or len(packs[index].payloads) >= MAX_EVENTS_PER_MESSAGE
            or packs[index].size + len(payload) > MAX_MESSAGE_BYTES
        ):
            index = taking[subject] = len(packs)
            packs.append(_Pack(subject, []))
        packs[index].payloads.append(payload)
        packs[index].size += len(payload) + 1
        latest[about] = index
    return [(p.subject, _joined(p.payloads)) for p in packs]


def packable(subject: str, event: dict[str, Any]) -> tuple[str, str, bytes]:
    """An event as `pack` takes it: its stored subject, what it is about, its encoding."""
    return subject, str(event.get("subject", "")), orjson.dumps(event)


def _joined(payloads: list[bytes]) -> bytes:
    return payloads[0] if len(payloads) == 1 else b"[" + b",".join(payloads) + b"]"


def _count(data: bytes) -> int:
    """The events in a stored message, without decoding it (each is an envelope that starts
    with its `specversion`, see `service.apply.event_at`)."""
    return data.count(b'{"specversion"') or 1


def unpack(data: bytes) -> list[dict[str, Any]]:
    """The events of one stored message."""
    value = orjson.loads(data)
    return value if isinstance(value, list) else [value]


class EventLog:
    def __init__(self, conn: Connection, names: n.Names, batches: BatchReplies) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        self._commits: GroupCommit[tuple[str, str, bytes]] = GroupCommit(self._send)

    async def append(self, queue: str, event: dict[str, Any]) -> None:
        await self.append_many(queue, [event])

    async def append_many(self, queue: str, events: list[dict[str, Any]]) -> None:
        """Append in order; events appended concurrently elsewhere go in the same send."""
        await self._commits.submit(
            [packable(self._names.event_subject(queue, e["type"]), e) for e in events]
        )

    async def append_worker(self, event: dict[str, Any]) -> None:
        """Append a worker event (no queue)."""
        subject = self._names.worker_event_subject(event["type"])
        await self._commits.submit([packable(subject, event)])

    async def _send(self, items: list[tuple[str, str, bytes]]) -> None:
        await self._conn.store_many([(subject, data, None) for subject, data in pack(items)])

    async def locate(self, event_id: str, at_ms: int) -> Position:
        """Where to resume to read what follows event `event_id`, stamped at `at_ms`.

        Just after it when it is stored within `EVENT_TIME_SKEW_MS` of `at_ms` (and within
        `MAX_SCANNED` events of the window's start). Otherwise (aged out, never stored, or
        stamped by a clock further off) the first event stored at or after
        `at_ms - FALLBACK_SKEW_MS`: nothing after the event is skipped unless the clocks
        disagree by more than that; events before it may come again (event delivery is
        at-least-once, ojs-events.md §9.1).
        """
        found = await self._find(event_id, at_ms)
        if found is not None:
            return found
        stream, everything = self._names.events_stream, self._names.event_filter(None, None)
        start = ids.format_ts(max(0, at_ms - FALLBACK_SKEW_MS))
        msgs = await self._batches.get_since(stream, everything, start, 1)
        if msgs:
            return Position(_sequence(msgs[0], 1))
        return Position.after(await self._last_sequence())

    async def _find(self, event_id: str, at_ms: int) -> Position | None:
        """Just after event `event_id` if it is stored near `at_ms`, else None."""
        stream, everything = self._names.events_stream, self._names.event_filter(None, None)
        start = ids.format_ts(max(0, at_ms - EVENT_TIME_SKEW_MS))
        msgs = await self._batches.get_since(stream, everything, start, _BATCH)
        if not msgs:
            return None
        needle = b'"id":' + orjson.dumps(event_id)
        scanned, seq = 0, _sequence(msgs[0], 1) - 1
        while msgs:
            for msg in msgs:
                seq = _sequence(msg, seq + 1)
                if needle in msg.data:
                    events = unpack(msg.data)
                    for index, event in enumerate(events):
                        if event.get("id") == event_id:
                            return _next(seq, index, len(events))
                scanned += _count(msg.data)
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
        after: Position,
        limit: int,
        job_types: Iterable[str] = (),
    ) -> tuple[list[dict[str, Any]], Position, bool]:
        """Events from `after` on matching all filters given: (events, where the next read
        resumes, more left). `types` entries may end in `*` (prefix match)."""
        type_set, queue_set, job_type_set = set(types), set(queues), set(job_types)
        subject = self._names.event_filter(
            next(iter(queue_set)) if len(queue_set) == 1 else None,
            next(iter(type_set))
            if len(type_set) == 1 and "*" not in next(iter(type_set))
            else None,
        )
        found: list[dict[str, Any]] = []
        position, scanned, messages = after, 0, 0
        # Messages asked for per direct get: at first about a page's worth, then as many as
        # the events per message seen so far leave room for (a message may hold 100 events).
        batch = min(_BATCH, max(limit, 16))
        while len(found) < limit and scanned < MAX_SCANNED:
            msgs = await self._batches.get_many(
                self._names.events_stream, subject, position.seq, batch
            )
            if not msgs:
                return found, position, False
            for msg in msgs:
                if scanned >= MAX_SCANNED:
                    return found, position, True
                seq = _sequence(msg, position.seq)
                events = unpack(msg.data)
                messages += 1
                # A message partly read before resumes where it was left (and only that one:
                # a cursor's message may be gone, or not match these filters).
                skip = position.skip if seq == position.seq else 0
                for index in range(skip, len(events)):
                    scanned += 1
                    if _matches(events[index], type_set, queue_set, job_type_set):
                        found.append(events[index])
                        if len(found) >= limit:
                            return found, _next(seq, index, len(events)), True
                position = Position.after(seq)
            if len(msgs) < batch:
                return found, position, False
            per_message = max(1.0, scanned / messages)
            batch = max(8, min(_BATCH, int((MAX_SCANNED - scanned) / per_message)))
        return found, position, True


def _next(seq: int, index: int, count: int) -> Position:
    """Just after event `index` of the `count` events of message `seq`."""
    return Position(seq, index + 1) if index + 1 < count else Position.after(seq)


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
