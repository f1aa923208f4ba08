"""FETCH: claim jobs for a worker, highest priority first, FIFO within a priority.

For each requested queue in order (skipping paused ones), the ready index says which priorities
have entries; entries are pulled from the highest one down and each is claimed by
compare-and-set on its record. Claims within one fetch run concurrently. Write order per claim:
timer (lease deadline) first, then the record; the ready entry is acked last, so a crash leaves
either an entry that is offered again or an active job whose timer will requeue it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ojs_nats.model import job as jobs
from ojs_nats.model.lifecycle import State
from ojs_nats.service.apply import commit
from ojs_nats.service.context import Context
from ojs_nats.storage import ReadyEntry, RevisionConflict

#: An entry newer than its record is a transition still in flight: offer it again a little later.
#: After this long it is a leftover of a crash and is dropped.
IN_FLIGHT_GRACE_MS = 30_000
IN_FLIGHT_RETRY_MS = 50
MAX_CLAIM_ATTEMPTS = 5
#: How long a fetch waits, once per priority, for entries the stream has but the consumer has
#: not seen yet (replication lag inside a NATS cluster is a few milliseconds).
LAGGING_CONSUMER_WAIT_MS = 100


async def fetch(
    ctx: Context, queues: list[str], count: int, worker_id: str | None, visibility_ms: int | None
) -> list[dict[str, Any]]:
    if ctx.draining:
        return []
    claimed: list[dict[str, Any]] = []
    for queue in queues:
        if ctx.storage.queues.settings(queue).get("paused"):
            continue
        counts = await ctx.storage.ready.counts(queue)
        for priority in sorted(counts, reverse=True):
            wait_ms = LAGGING_CONSUMER_WAIT_MS
            while len(claimed) < count:
                entries = await ctx.storage.ready.pull(queue, priority, count - len(claimed))
                if not entries and wait_ms:
                    # The stream counted entries, but on a cluster the consumer's leader can be
                    # the replica that has not applied the newest ones yet: wait for them once
                    # rather than report a queue with jobs in it as empty.
                    entries = await ctx.storage.ready.pull(
                        queue, priority, count - len(claimed), wait_ms
                    )
                wait_ms = 0
                if not entries:
                    break
                results = await asyncio.gather(
                    *(_claim(ctx, e, worker_id, visibility_ms) for e in entries)
                )
                claimed.extend(job for job in results if job is not None)
            if len(claimed) >= count:
                return claimed
    return claimed


async def _claim(
    ctx: Context, entry: ReadyEntry, worker_id: str | None, visibility_ms: int | None
) -> dict[str, Any] | None:
    ready = ctx.storage.ready
    for _ in range(MAX_CLAIM_ATTEMPTS):
        stored = await ctx.storage.jobs.get(entry.job_id)
        record = stored.record if stored else None
        step = int(record["sys"]["step"]) if record else 0
        if record is None or record["job"]["state"] != State.AVAILABLE or step != entry.step:
            if step < entry.step and entry.age_ms < IN_FLIGHT_GRACE_MS:
                await ready.retry_later(entry, IN_FLIGHT_RETRY_MS)
            else:
                await ready.ack(entry)  # stale entry: the job moved on
            return None
        assert stored is not None
        now = ctx.clock()
        expired = jobs.on_wake(record, now)
        if expired is not None:  # expires_at passed before anyone started it
            try:
                await commit(ctx, expired, stored)
            except RevisionConflict:
                continue
            await ready.ack(entry)
            return None
        sys = record["sys"]
        visibility = (
            visibility_ms or sys.get("vis_ms") or ctx.settings.default_visibility_timeout_ms
        )
        timeout = sys.get("timeout_ms") or ctx.settings.default_timeout_ms or None
        change = jobs.claim(record, now, worker_id, int(visibility), timeout)
        try:
            await commit(ctx, change, stored)
        except RevisionConflict:
            continue
        await ready.ack(entry)
        return change.job
    await ready.retry_later(entry, IN_FLIGHT_RETRY_MS)
    return None
