"""Count-based retention of the dead-letter queue (ojs-dead-letter.md §5, §8): at most
`OJS_DEAD_LETTER_MAX_COUNT` entries, the oldest pruned first, with a `dead_letter.pruned` event.

Called by `apply` right after a job enters the queue (the only time the count grows), so no
periodic task is needed; age-based retention is the entries' and records' TTL. Each pruned entry
is deleted by sequence first: of several replicas pruning at once, only the one whose delete
succeeds deletes the record and counts it. The record is deleted by compare-and-set and only if
it is still dead-lettered, so a job retried meanwhile is never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from ojs_nats.errors import OjsError
from ojs_nats.service import queue_config
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict

#: Entries pruned per round (a lowered limit is worked off in rounds of this size).
PRUNE_BATCH = 256

log = logging.getLogger(__name__)


async def enforce_quietly(ctx: Context, last_seq: int) -> None:
    """`enforce`, for the follow-ups of a transition already written: a failure is logged, not
    answered (a FAIL must not get a 503 for a prune), and the next dead-lettering retries."""
    try:
        await enforce(ctx, last_seq)
    except (OjsError, RevisionConflict) as exc:
        log.warning("dead-letter pruning failed, left to the next dead-lettering: %s", exc)


async def enforce(ctx: Context, last_seq: int) -> int:
    """Prune the oldest entries beyond the limit, given the sequence of the newest one.

    Returns how many jobs this call pruned.
    """
    limit = ctx.settings.dead_letter_max_count
    if not limit or last_seq <= limit:
        return 0  # no more entries than sequences were ever handed out: cannot be over
    pruned: dict[str, list[str]] = defaultdict(list)
    while True:
        stored, first_seq = await ctx.storage.dead.size()
        excess = min(stored - limit, PRUNE_BATCH)
        if excess <= 0:
            break
        entries = await ctx.storage.dead.oldest(first_seq, excess)
        if not entries:
            break
        done = await asyncio.gather(*(_prune(ctx, seq, job_id) for seq, _, job_id in entries))
        for (_, queue, job_id), took in zip(entries, done, strict=True):
            if took:
                pruned[queue].append(job_id)
        if not any(done):
            break  # taken by another replica meanwhile, or not takeable: the next add retries
    for queue, job_ids in pruned.items():
        data = {"count": len(job_ids), "job_ids": job_ids, "reason": "max_count"}
        await queue_config.emit(ctx, queue, "dead_letter.pruned", {**data, "max_count": limit})
    return sum(len(j) for j in pruned.values())


async def _prune(ctx: Context, seq: int, job_id: str) -> bool:
    """Take the entry at `seq`, then delete its job if still dead-lettered. True if taken."""
    if not await ctx.storage.dead.take(seq):
        return False
    for _ in range(3):
        stored = await ctx.storage.jobs.get(job_id)
        if stored is None or not stored.record["sys"].get("dead"):
            return True  # expired, deleted or retried meanwhile: nothing more to prune
        try:
            await ctx.storage.jobs.delete_at(job_id, stored.revision)
        except RevisionConflict:
            continue
        return True
    return True
