"""The event log: stream `<NS>_EVENTS`, subject `<ns>.events.<queue>.<type>`, limits retention.

Every lifecycle event is appended here (for the polling endpoint, SSE and webhooks); reads page
through it by stream sequence, which doubles as the opaque cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.coalesce import GroupCommit
from ojs_nats.storage.connection import Connection

#: Stored events examined per read at most (filters are applied to these).
MAX_SCANNED = 4096
_BATCH = 256


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

    async def read(
        self, types: Iterable[str], queues: Iterable[str], after_seq: int, limit: int
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """Events after `after_seq` matching the filters: (events, last sequence, more left)."""
        type_set, queue_set = set(types), set(queues)
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
                seq = int((msg.headers or {}).get("Nats-Sequence", cursor + 1))
                event = orjson.loads(msg.data)
                if _matches(event, type_set, queue_set):
                    found.append(event)
                cursor = seq
                if len(found) >= limit:
                    return found, cursor, True
            if len(msgs) < _BATCH:
                return found, cursor, False
        return found, cursor, True


def _matches(event: dict[str, Any], types: set[str], queues: set[str]) -> bool:
    if queues and (event.get("data") or {}).get("queue") not in queues:
        return False
    if not types:
        return True
    kind = str(event.get("type", ""))
    return any(kind == t or (t.endswith("*") and kind.startswith(t[:-1])) for t in types)
