"""Per-queue job counts by state: stream `<NS>_COUNTERS`, one counter subject per (queue, state).

Counters use JetStream's atomic increments (`Nats-Incr`), so replicas never contend on a
compare-and-set; queue stats read them with one batched direct get instead of scanning jobs.
A crash between a job's transition and its counter update can leave a count off by one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import orjson

from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.coalesce import GroupCommit
from ojs_nats.storage.connection import Connection


class Counters:
    def __init__(self, conn: Connection, names: n.Names, batches: BatchReplies) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        self._commits: GroupCommit[tuple[str, int]] = GroupCommit(
            lambda items: increment(conn, items)
        )

    async def add(self, queue: str, deltas: Mapping[str, int]) -> None:
        """Apply increments; concurrent callers' increments are merged per counter."""
        await self._commits.submit(
            [(self._names.counter_subject(queue, state), d) for state, d in deltas.items() if d]
        )

    async def read(self, queue: str | None = None) -> dict[str, Counter[str]]:
        """{queue: {state: count}} for one queue or all of them."""
        result: dict[str, Counter[str]] = {}
        cursor = 0
        while True:
            msgs = await self._batches.get_many(
                self._names.counters_stream, self._names.counter_filter(queue), cursor + 1, 512
            )
            for msg in msgs:
                headers = msg.headers or {}
                cursor = int(headers.get("Nats-Sequence", cursor + 1))
                _, _, queue_token, state = str(headers.get("Nats-Subject", "")).split(".")[-4:]
                value = int(orjson.loads(msg.data).get("val", "0"))
                result.setdefault(n.decode_queue(queue_token), Counter())[state] = value
            if len(msgs) < 512:
                return result


async def increment(conn: Connection, items: list[tuple[str, int]]) -> None:
    """Apply (counter subject, delta) increments, merged per subject first (the send of
    `Counters`' group commit; transitions send theirs with `follow_ups.py`)."""
    await conn.store_many(increments(items))


def increments(items: Iterable[tuple[str, int]]) -> list[tuple[str, bytes, dict[str, str]]]:
    """(counter subject, delta) pairs merged per subject, as server-side increment messages."""
    merged: dict[str, int] = {}
    for subject, delta in items:
        merged[subject] = merged.get(subject, 0) + delta
    return [(subject, b"", {n.INCREMENT: f"{d:+d}"}) for subject, d in merged.items() if d]
