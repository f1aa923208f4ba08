"""Rate-limit state and concurrency slots: KV bucket `<NS>_LIMITS`, shared by every replica.

`rate.<partition>`: a window limit's GCRA arrival time (CAS-updated, expires when idle).
`slot.<partition>.<i>`: the job occupying concurrency slot i, created only if free and deleted at
its revision. Listing a partition's slots is one batched direct get.
"""

from __future__ import annotations

from typing import Any

from ojs_nats.storage import kv
from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.connection import Connection

_BATCH = 256


class LimitStore:
    def __init__(self, conn: Connection, names: n.Names, batches: BatchReplies) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        self._stream = f"KV_{names.limits_bucket}"

    # ------------------------------------------------------------ window limits
    async def rate_state(self, partition: str) -> kv.Entry:
        return await kv.read(self._conn, self._stream, self._names.rate_subject(partition))

    async def set_rate_state(self, partition: str, tat: float, expected: int, ttl_s: int) -> int:
        """Compare-and-set the partition's arrival time. Raises `RevisionConflict` if it lost."""
        subject = self._names.rate_subject(partition)
        return await kv.write(self._conn, subject, {"tat": tat}, expected, ttl_s)

    # ------------------------------------------------------------ concurrency slots
    async def slots(self, partition: str, limit: int) -> dict[int, kv.Entry]:
        """Slot index -> entry for every slot below `limit` (free ones have no value)."""
        found = {i: kv.Entry(None, 0, self._names.slot_subject(partition, i)) for i in range(limit)}
        if limit <= 0:
            return found
        cursor = 0
        while True:
            msgs = await self._batches.get_many(
                self._stream, self._names.slot_filter(partition), cursor + 1, _BATCH
            )
            for msg in msgs:
                entry = kv.decode(msg, "")
                cursor = entry.revision
                index = int(entry.subject.rsplit(".", 1)[1])
                if index < limit:
                    found[index] = entry
            if len(msgs) < _BATCH:
                return found

    async def take_slot(self, subject: str, holder: dict[str, Any], expected: int) -> int:
        """Occupy a slot that is free (or stale) at `expected`; raises `RevisionConflict`."""
        return await kv.write(self._conn, subject, holder, expected)

    async def free_slot(self, subject: str, revision: int) -> bool:
        """Free a slot if it is still the one taken at `revision`."""
        return await kv.remove(self._conn, subject, revision)
