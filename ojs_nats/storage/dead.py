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

    async def add(self, queue: str, job_id: str, retention_s: int | None = None) -> int:
        """Index a dead-lettered job for `retention_s` (default: the configured retention);
        returns the entry's sequence (sequences only grow: no more entries are stored)."""
        ttl = retention_s if retention_s is not None else self._retention_s
        headers = {n.MSG_TTL: f"{ttl}s"} if ttl else None
        return await self._conn.store(
            self._names.dead_subject(queue, job_id), job_id.encode(), headers
        )

    async def size(self) -> tuple[int, int]:
        """(entries stored, sequence of the oldest) over all queues."""
        info = await self._conn.api(f"$JS.API.STREAM.INFO.{self._names.dead_stream}")
        state = info.get("state", {})
        return int(state.get("messages", 0)), int(state.get("first_seq", 0))

    async def oldest(self, from_seq: int, count: int) -> list[tuple[int, str, str]]:
        """Up to `count` entries from `from_seq` on, oldest first: (sequence, queue, job id)."""
        found: list[tuple[int, str, str]] = []
        cursor = from_seq - 1
        while len(found) < count:
            msgs = await self._batches.get_many(
                self._names.dead_stream, self._names.dead_filter(None), cursor + 1, _BATCH
            )
            for msg in msgs[: count - len(found)]:
                headers = msg.headers or {}
                cursor = int(headers.get("Nats-Sequence", cursor + 1))
                queue = str(headers.get("Nats-Subject", "")).split(".")[-2]
                found.append((cursor, n.decode_queue(queue), msg.data.decode()))
            if len(msgs) < _BATCH:
                break
        return found

    async def take(self, seq: int) -> bool:
        """Delete the entry at `seq`; False if it is gone already (another replica took it,
        or it expired or was removed): whoever gets True owns what follows from it."""
        try:
            await self._conn.api(
                f"$JS.API.STREAM.MSG.DELETE.{self._names.dead_stream}", {"seq": seq}
            )
        except JetStreamError:
            return False
        return True

    async def remove(self, queue: str, job_id: str) -> None:
        with contextlib.suppress(JetStreamError):
            await self._conn.api(
                f"$JS.API.STREAM.PURGE.{self._names.dead_stream}",
                {"filter": self._names.dead_subject(queue, job_id)},
            )

    async def scan(
        self, queue: str | None, after_seq: int, batch: int
    ) -> tuple[list[tuple[int, str]], bool]:
        """Up to `batch` entries after `after_seq`, oldest first: ((sequence, job id) list,
        whether entries may remain after them)."""
        msgs = await self._batches.get_many(
            self._names.dead_stream, self._names.dead_filter(queue), after_seq + 1, batch
        )
        entries = [(int((m.headers or {}).get("Nats-Sequence", 0)), m.data.decode()) for m in msgs]
        pending = int((msgs[-1].headers or {}).get("Nats-Num-Pending", 1)) if msgs else 0
        return entries, pending > 0

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
