"""Worker registry: KV bucket `<NS>_WORKERS`, key = worker id, each entry expiring on its own.

A heartbeat rewrites the worker's entry with a TTL, so workers that stop beating disappear
without any sweeper. An operator's directive (quiet / terminate) is stored in the entry and
relayed on the worker's next heartbeat.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ojs_nats.storage import names as n
from ojs_nats.storage.connection import Connection

_UNSAFE = re.compile(r"[^-_=/.a-zA-Z0-9]")


def worker_key(worker_id: str) -> str:
    """A KV-safe key for any worker id (unsafe characters become `=XX`)."""
    return _UNSAFE.sub(lambda m: f"={ord(m.group()):02X}", worker_id)[:200] or "anonymous"


class Workers:
    def __init__(self, conn: Connection, names: n.Names, ttl_s: int = 300) -> None:
        self._conn = conn
        self._names = names
        self._ttl_s = ttl_s

    def _subject(self, worker_id: str) -> str:
        return self._names.kv_subject(self._names.workers_bucket, worker_key(worker_id))

    async def get(self, worker_id: str) -> dict[str, Any] | None:
        msg = await self._conn.direct_get(
            f"KV_{self._names.workers_bucket}", self._subject(worker_id)
        )
        if msg is None or not msg.data:
            return None
        return dict(orjson.loads(msg.data))

    async def put(self, worker_id: str, entry: dict[str, Any]) -> None:
        await self._conn.store(
            self._subject(worker_id), orjson.dumps(entry), {n.MSG_TTL: f"{self._ttl_s}s"}
        )
