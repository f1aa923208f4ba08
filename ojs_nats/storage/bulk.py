"""The writes of a batch enqueue as atomic batches (storage/atomic.py): records in ONE batch with
create-only expectations (every job exists afterwards, or none; no job is overwritten), ready
entries and events (packed several per message) in batches of up to 1,000 for speed (one round
trip each, not one per job; under `ATOMIC_WORTH_FROM` messages they are pipelined instead, which
costs the server less).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson

from ojs_nats.storage import names as n
from ojs_nats.storage.atomic import ATOMIC_WORTH_FROM, MAX_ATOMIC, Message, publish_atomic
from ojs_nats.storage.connection import Connection
from ojs_nats.storage.events import pack, packable

#: Atomic batches one process keeps open at once (JetStream allows 50 per stream).
MAX_OPEN_BATCHES = 16


class BulkWriter:
    def __init__(self, conn: Connection, names: n.Names) -> None:
        self._conn = conn
        self._names = names
        self._open = asyncio.Semaphore(MAX_OPEN_BATCHES)

    async def _publish(self, messages: Sequence[Message]) -> list[int]:
        async with self._open:
            return await publish_atomic(self._conn, messages)

    async def ready_entries(
        self, entries: Sequence[tuple[str, int, str, int]], batched: bool = False
    ) -> list[int]:
        """Publish (queue, priority, job id, step) entries; returns their stream sequences.

        The consumers of the (queue, priority) pairs must exist (`ReadyIndex.ensure_consumer`).
        `batched`: as atomic batches even when few (cheaper for the gateway, dearer for the
        server; see `ATOMIC_WORTH_FROM`).
        """
        messages = [
            Message(self._names.ready_subject(queue, priority), f"{job_id} {step}".encode())
            for queue, priority, job_id, step in entries
        ]
        return await self._chunked(messages, batched)

    async def records(self, records: Sequence[tuple[str, dict[str, Any], int]]) -> list[int]:
        """Create (job id, record, expected revision) records all-or-nothing; new revisions.

        Raises:
            RevisionConflict: one of the ids is taken (nothing was written).
            ValueError: more records than one atomic batch holds.
        """
        messages = [
            Message(
                self._names.kv_subject(self._names.jobs_bucket, job_id),
                orjson.dumps(record),
                {n.EXPECTED_LAST_SUBJECT_SEQ: str(expected)},
            )
            for job_id, record, expected in records
        ]
        return await self._publish(messages)

    async def events(self, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Append (queue, event) pairs to the event log (several per message: `events.pack`)."""
        packed = pack(packable(self._names.event_subject(q, e["type"]), e) for q, e in events)
        await self._chunked([Message(subject, data) for subject, data in packed])

    async def _chunked(self, messages: Sequence[Message], batched: bool = False) -> list[int]:
        """Store `messages` (no all-or-nothing needed): few pipelined, many as atomic batches."""
        if len(messages) < ATOMIC_WORTH_FROM and not batched:
            return await self._conn.store_many(
                [(m.subject, m.payload, m.headers) for m in messages]
            )
        sequences: list[int] = []
        for start in range(0, len(messages), MAX_ATOMIC):
            sequences += await self._publish(messages[start : start + MAX_ATOMIC])
        return sequences
