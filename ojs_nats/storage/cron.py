"""Cron registrations: KV bucket `<NS>_CRON`, key = cron name, written by compare-and-set.

The record holds the definition and the bookkeeping of its ticks (generation, last job, run
count). Listing reads the bucket's latest entries in one batched direct get.
"""

from __future__ import annotations

from typing import Any

import orjson

from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.connection import Connection, RevisionConflict
from ojs_nats.storage.jobs import Stored

_BATCH = 512


class CronRegistry:
    def __init__(self, conn: Connection, names: n.Names, batches: BatchReplies) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches

    @property
    def _stream(self) -> str:
        return f"KV_{self._names.cron_bucket}"

    def _subject(self, name: str) -> str:
        return self._names.kv_subject(self._names.cron_bucket, name)

    async def get(self, name: str) -> Stored | None:
        msg = await self._conn.direct_get(self._stream, self._subject(name))
        if msg is None or not msg.data:
            return None
        return Stored(orjson.loads(msg.data), int((msg.headers or {})["Nats-Sequence"]))

    async def put(self, name: str, record: dict[str, Any], revision: int) -> int:
        """Create (revision 0) or replace by compare-and-set; `RevisionConflict` if it lost."""
        headers = {n.EXPECTED_LAST_SUBJECT_SEQ: str(revision)}
        try:
            return await self._conn.store(self._subject(name), orjson.dumps(record), headers)
        except RevisionConflict:
            if revision:
                raise
            # A deleted registration leaves a marker: creating over it is allowed.
            marker = await self._conn.direct_get(self._stream, self._subject(name))
            if marker is None or marker.data:
                raise
            headers[n.EXPECTED_LAST_SUBJECT_SEQ] = str((marker.headers or {})["Nats-Sequence"])
            return await self._conn.store(self._subject(name), orjson.dumps(record), headers)

    async def delete(self, name: str) -> None:
        await self._conn.api(
            f"$JS.API.STREAM.PURGE.{self._stream}", {"filter": self._subject(name)}
        )

    async def all(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        cursor = 0
        while True:
            msgs = await self._batches.get_many(
                self._stream, f"$KV.{self._names.cron_bucket}.>", cursor + 1, _BATCH
            )
            for msg in msgs:
                cursor = int((msg.headers or {}).get("Nats-Sequence", cursor + 1))
                if msg.data:
                    records.append(orjson.loads(msg.data))
            if len(msgs) < _BATCH:
                return records
