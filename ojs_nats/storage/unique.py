"""Uniqueness locks: KV bucket `<NS>_UNIQUE`, key = the uniqueness key (SHA-256 hex), value =
the job holding it. Created only if absent, taken over only by compare-and-set, with a TTL when
the lock's end is known; what a lock means is decided in `service/unique.py`.
"""

from __future__ import annotations

from typing import Any

from ojs_nats.storage import kv
from ojs_nats.storage import names as n
from ojs_nats.storage.connection import Connection


class UniqueLocks:
    def __init__(self, conn: Connection, names: n.Names) -> None:
        self._conn = conn
        self._names = names

    async def get(self, key: str) -> kv.Entry:
        return await kv.read(
            self._conn, f"KV_{self._names.unique_bucket}", self._names.unique_subject(key)
        )

    async def put(
        self, key: str, value: dict[str, Any], expected: int, ttl_s: int | None = None
    ) -> int:
        """Create (expected = revision of the absent entry) or take over a lock; new revision.

        Raises:
            RevisionConflict: another writer got there first.
        """
        return await kv.write(self._conn, self._names.unique_subject(key), value, expected, ttl_s)

    async def release(self, key: str, revision: int) -> bool:
        """Drop the lock if it is still the one written at `revision`."""
        return await kv.remove(self._conn, self._names.unique_subject(key), revision)
