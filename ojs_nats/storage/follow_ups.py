"""The writes that follow a job transition, in one group commit: its events (`<NS>_EVENTS`), its
state counters (`<NS>_COUNTERS`) and its throughput tick (`<NS>_THROUGHPUT`).

They used to be three group commits, each awaited in a task of its own: per transition three
tasks, three waiters and three sends for what is one burst of messages. One `write` per
transition is one waiter; each send stores the events packed (`events.pack`), then the counter
and throughput increments merged per subject, pipelined together.

A failed event or counter write fails every transition of that send (as each of the separate
commits did); a lost throughput tick does not: it is statistics only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ojs_nats.storage import names as n
from ojs_nats.storage.coalesce import GroupCommit
from ojs_nats.storage.connection import Connection, Headers, stored_seq
from ojs_nats.storage.counters import increments
from ojs_nats.storage.events import pack, packable
from ojs_nats.storage.throughput import MINUTE_MS

log = logging.getLogger(__name__)

#: What a transition asks for: packable events, counter increments, throughput increments.
_Writes = tuple[list[tuple[str, str, bytes]], list[tuple[str, int]], list[tuple[str, int]]]


class FollowUps:
    def __init__(self, conn: Connection, names: n.Names) -> None:
        self._conn = conn
        self._names = names
        self._commits: GroupCommit[_Writes] = GroupCommit(self._send)

    async def write(
        self,
        queue: str,
        events: Sequence[dict[str, Any]],
        deltas: Mapping[str, int],
        tick: str | None = None,
        now_ms: int = 0,
    ) -> None:
        """Store `events` in order, add `deltas` to the queue's state counters and, with `tick`
        (`completed` or `failed`), count one attempt in the minute of `now_ms`; returns once
        the events and counters were acknowledged (with those of concurrent transitions)."""
        names = self._names
        stored = [packable(names.event_subject(queue, e["type"]), e) for e in events]
        counts = [(names.counter_subject(queue, state), d) for state, d in deltas.items() if d]
        ticks = [(names.throughput_subject(queue, tick, now_ms // MINUTE_MS), 1)] if tick else []
        if stored or counts or ticks:
            await self._commits.submit([(stored, counts, ticks)])

    async def _send(self, writes: list[_Writes]) -> None:
        events = [item for w in writes for item in w[0]]
        stored: list[tuple[str, bytes, Headers]] = [(s, data, None) for s, data in pack(events)]
        stored += increments(item for w in writes for item in w[1])
        ticks: list[tuple[str, bytes, Headers]] = list(
            increments(item for w in writes for item in w[2])
        )
        replies = await self._conn.request_many(stored + ticks)
        for reply in replies[len(stored) :]:
            try:
                stored_seq(reply)
            except Exception:  # statistics only
                log.debug("throughput tick lost", exc_info=True)
        for reply in replies[: len(stored)]:
            stored_seq(reply)  # raises what JetStream refused
