"""Worker registry: KV bucket `<NS>_WORKERS`, key = worker id, each entry expiring on its own.

A heartbeat rewrites the worker's entry (compare-and-set on its revision) with a TTL, so workers
that stop beating disappear without any sweeper; before that, the worker's liveness timer
(service/liveness.py) marks the entry dead. An operator's directive (quiet / terminate) is
stored in the entry and relayed on the worker's next heartbeat.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ojs_nats.storage import kv
from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.connection import Connection

_UNSAFE = re.compile(r"[^-_=/.a-zA-Z0-9]")
#: Entries read by one listing at most.
MAX_LISTED = 10_000


def worker_key(worker_id: str) -> str:
    """A KV-safe key for any worker id (unsafe characters become `=XX`)."""
    return _UNSAFE.sub(lambda m: f"={ord(m.group()):02X}", worker_id)[:200] or "anonymous"


def timer_key(worker_id: str) -> str:
    """A subject-safe, fixed-size timer key for any worker id."""
    return hashlib.sha256(worker_id.encode()).hexdigest()[:32]


class Workers:
    def __init__(
        self, conn: Connection, names: n.Names, batches: BatchReplies, ttl_s: int = 300
    ) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        self._ttl_s = ttl_s

    def _subject(self, worker_id: str) -> str:
        return self._names.kv_subject(self._names.workers_bucket, worker_key(worker_id))

    async def read(self, worker_id: str) -> kv.Entry:
        """The worker's entry (value None if unknown) and the revision a write must expect."""
        return await kv.read(
            self._conn, f"KV_{self._names.workers_bucket}", self._subject(worker_id)
        )

    async def get(self, worker_id: str) -> dict[str, Any] | None:
        return (await self.read(worker_id)).value

    async def write(self, worker_id: str, entry: dict[str, Any], expected: int) -> int:
        """Store `entry` if the worker's entry is still at `expected`.

        Raises:
            RevisionConflict: another write (a heartbeat, the liveness timer) came first.
        """
        return await kv.write(self._conn, self._subject(worker_id), entry, expected, self._ttl_s)

    async def list(self) -> list[dict[str, Any]]:
        """Every entry not yet expired (admin listing; O(workers), never on a hot path)."""
        subject = self._names.kv_subject(self._names.workers_bucket, ">")
        msgs = await self._batches.get_last_matching(
            f"KV_{self._names.workers_bucket}", subject, MAX_LISTED
        )
        found = []
        for msg in msgs:
            entry = kv.decode(msg, subject).value
            if entry is not None:
                found.append(dict(entry))
        return found
