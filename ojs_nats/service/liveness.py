"""Dead-worker detection and job recovery (ojs-worker-protocol.md §10), on one durable timer
per live worker: no scan, no leader.

A worker's first heartbeat (or its first after being declared dead) arms a `worker` timer at
last heartbeat + `OJS_WORKER_HEARTBEAT_TIMEOUT_MS`, before the entry saying it is watched is
written. Later heartbeats only rewrite the entry. When the timer fires it reads the entry: a
newer heartbeat re-arms it for that heartbeat's deadline; otherwise the worker is dead, and
(1) every job of its last `active_job_ids` that it still holds is made available again
(`model.job.worker_lost`), (2) the entry is marked dead by compare-and-set, (3) `worker.stopped`
is emitted and the timer acked. A crash before (2) redelivers the timer, which redoes (1)
(jobs already recovered are no longer the worker's and are skipped); a heartbeat that lands
before (2) makes the compare-and-set fail: the worker is alive after all and stays watched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ojs_nats.model import ids
from ojs_nats.model import job as jobs
from ojs_nats.service.apply import commit, event_at
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer, RevisionConflict
from ojs_nats.storage.workers import timer_key

log = logging.getLogger(__name__)

TIMER_KIND = "worker"
#: Compare-and-set attempts on one worker entry or job record before handing the timer back.
MAX_ATTEMPTS = 8
RETRY_MS = 200
#: Worker entry `status` values.
ALIVE = "alive"
DEAD = "dead"
#: Deregistered: its last heartbeat said `terminate` with no jobs, then it went silent.
STOPPED = "stopped"


def timeout_ms(ctx: Context) -> int:
    return ctx.settings.worker_heartbeat_timeout_ms


async def watch(ctx: Context, worker_id: str, last_beat_ms: int) -> None:
    """Arm the worker's liveness timer for `last_beat_ms` + the timeout (replaces any other)."""
    await ctx.storage.timers.arm(
        TIMER_KIND, timer_key(worker_id), last_beat_ms + timeout_ms(ctx), {"worker": worker_id}
    )


def needs_watch(ctx: Context, entry: dict[str, Any] | None) -> bool:
    """Whether a heartbeat must arm the timer: no timer watches this worker yet."""
    return timeout_ms(ctx) > 0 and (
        entry is None or entry.get("status") != ALIVE or not entry.get("watched")
    )


async def on_worker_timer(ctx: Context, timer: FiredTimer) -> None:
    """Re-arm for a worker that beat since, or recover a dead worker's jobs; then ack."""
    worker_id = str(timer.data.get("worker") or "")
    for _ in range(MAX_ATTEMPTS):
        found = await ctx.storage.workers.read(worker_id)
        entry = found.value
        if not worker_id or entry is None or entry.get("status") != ALIVE:
            break  # unknown, expired, or declared dead already: nothing left to watch
        if not entry.get("watched") or timeout_ms(ctx) <= 0:
            break  # watching was switched off
        last = int(entry.get("last_heartbeat_ms") or 0)
        now = ctx.clock()
        if now < last + timeout_ms(ctx):
            await watch(ctx, worker_id, last)  # it beat since this timer was armed
            break
        if now - timer.due_ms > jobs.OVERLOOKED_MS:
            # Handled long after it was due: the server was down or unreachable, and the
            # worker's heartbeats with it (§10.3: no recovery for a mere heartbeat delay).
            # Watch again from now; a worker that is really dead is caught one timeout later.
            await watch(ctx, worker_id, now)
            break
        graceful = entry.get("reported_state") == "terminate" and not entry.get("active_job_ids")
        recovered = [] if graceful else await _recover(ctx, worker_id, entry, last, now)
        dead = {
            **entry,
            "status": STOPPED if graceful else DEAD,
            "watched": False,
            "dead_at": ids.format_ts(now),
            "recovered_jobs": recovered,
        }
        try:
            await ctx.storage.workers.write(worker_id, dead, found.revision)
        except RevisionConflict:
            continue  # a heartbeat landed meanwhile: look again
        await ctx.storage.events.append_worker(_stopped_event(ctx, dead, last, now))
        if graceful:
            break
        log.warning(
            "worker %s sent no heartbeat for %d ms: declared dead, %d job(s) recovered",
            worker_id,
            now - last,
            len(recovered),
        )
        break
    else:
        await ctx.storage.timers.again_in(timer, RETRY_MS)
        return
    await ctx.storage.timers.done(timer)


async def _recover(
    ctx: Context, worker_id: str, entry: dict[str, Any], last: int, now: int
) -> list[str]:
    job_ids = [j for j in entry.get("active_job_ids") or [] if isinstance(j, str)]
    done = await asyncio.gather(*(_recover_job(ctx, j, worker_id, last, now) for j in job_ids))
    return [job_id for job_id, ok in zip(job_ids, done, strict=True) if ok]


async def _recover_job(ctx: Context, job_id: str, worker_id: str, last: int, now: int) -> bool:
    """Make one job of the dead worker available again; False if it is no longer the worker's.

    Raises:
        RevisionConflict: the record kept changing (the timer is handed back and retried).
    """
    for _ in range(MAX_ATTEMPTS):
        stored = await ctx.storage.jobs.get(job_id)
        if stored is None:
            return False
        change = jobs.worker_lost(stored.record, now, worker_id, last, timeout_ms(ctx))
        if change is None:
            return False
        try:
            await commit(ctx, change, stored)
        except RevisionConflict:
            continue
        return True
    raise RevisionConflict(f"job {job_id} kept changing while recovering it")


def _stopped_event(ctx: Context, entry: dict[str, Any], last: int, now: int) -> dict[str, Any]:
    """`worker.stopped` (ojs-events.md §4.3): reason `error` for a worker declared dead (the
    catalog has no event of its own for that), `shutdown` for one that deregistered."""
    worker_id = str(entry.get("worker_id"))
    dead = entry.get("status") == DEAD
    data = {
        "worker_id": worker_id,
        "reason": "error" if dead else "shutdown",
        "detail": "heartbeat_timeout" if dead else "deregistered",
        "last_heartbeat_at": ids.format_ts(last),
        "silent_ms": now - last,
        "recovered_jobs": entry.get("recovered_jobs") or [],
        "queues": entry.get("queues") or [],
    }
    return event_at(ctx, "worker.stopped", worker_id, data)
