"""Per-queue throughput: stream `<NS>_THROUGHPUT`, one counter per (queue, kind, minute).

A completed or failed attempt adds one to the counter of its minute (server-side atomic
increment, no compare-and-set), among its transition's follow-ups (`follow_ups.py`). The stream
forgets counters older than its `max_age`, so reading the last hour is one batched direct get of
at most two counters per minute, never a scan.
"""

from __future__ import annotations

from collections import Counter

import orjson

from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies

MINUTE_MS = 60_000
#: How long minute counters are kept (the stream's max_age).
KEEP_S = 2 * 3600
KINDS = ("completed", "failed")
_BATCH = 256


class Throughput:
    def __init__(self, names: n.Names, batches: BatchReplies) -> None:
        self._names = names
        self._batches = batches

    async def read(self, queue: str) -> dict[str, Counter[int]]:
        """{kind: {minute: count}} for the minutes still kept."""
        result: dict[str, Counter[int]] = {kind: Counter() for kind in KINDS}
        cursor = 0
        while True:
            msgs = await self._batches.get_many(
                self._names.throughput_stream,
                self._names.throughput_filter(queue),
                cursor + 1,
                _BATCH,
            )
            for msg in msgs:
                headers = msg.headers or {}
                cursor = int(headers.get("Nats-Sequence", cursor + 1))
                *_, kind, minute = str(headers.get("Nats-Subject", "")).split(".")
                value = int(orjson.loads(msg.data).get("val", "0"))
                result.setdefault(kind, Counter())[int(minute)] = value
            if len(msgs) < _BATCH:
                return result
