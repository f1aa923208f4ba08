"""The dead-letter index: stream `<NS>_DEAD`, one entry per dead-lettered job, oldest first.

The entry holds only the job id (the record stays in the jobs bucket); entries expire with the
dead-letter retention. Listing pages through the stream by sequence, never through jobs.
"""

from __future__ import annotations

import contextlib

from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.connection import Connection, JetStreamError

_BATCH = 256


class DeadLetters:
    def __init__(
        self, conn: Connection, names: n.Names, batches: BatchReplies, retention_s: int
    ) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        self._retention_s = retention_s

    async def add(self, queue: str, job_id: str, retention_s: int | None = None) -> None:
        """Index a dead-lettered job for `retention_s` (default: the configured retention)."""
        ttl = retention_s if retention_s is not None else self._retention_s
        headers = {n.MSG_TTL: f"{ttl}s"} if ttl else None
        await self._conn.store(self._names.dead_subject(queue, job_id), job_id.encode(), headers)

    async def remove(self, queue: str, job_id: str) -> None:
        with contextlib.suppress(JetStreamError):
            await self._conn.api(
                f"$JS.API.STREAM.PURGE.{self._names.dead_stream}",
                {"filter": self._names.dead_subject(queue, job_id)},
            )

    async def page(
        self, queue: str | None, offset: int, limit: int, after_seq: int = 0
    ) -> tuple[list[str], int, int]:
        """(job ids, total matching, sequence to continue after) for one page."""
        subject = self._names.dead_filter(queue)
        ids: list[str] = []
        total: int | None = None
        cursor, skipped = after_seq, 0
        while len(ids) < limit:
            msgs = await self._batches.get_many(
                self._names.dead_stream, subject, cursor + 1, _BATCH
            )
            if not msgs:
                break
            if total is None:
                pending = int((msgs[0].headers or {}).get("Nats-Num-Pending", len(msgs) - 1))
                total = (after_seq and 0) or pending + 1
            for msg in msgs:
                cursor = int((msg.headers or {}).get("Nats-Sequence", cursor + 1))
                if skipped < offset:
                    skipped += 1
                    continue
                ids.append(msg.data.decode())
                if len(ids) >= limit:
                    break
            if len(msgs) < _BATCH:
                break
        return ids, total or 0, cursor
