"""The timer runner: pulls fired timers and dispatches each to its use case, concurrently.

One runs in every gateway process. The shared durable consumer gives each fired timer to one
runner; a handler that fails or whose process dies leaves the timer unacked, so JetStream
delivers it again (to any replica) after the redelivery wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ojs_nats.service import cron, finish, leases, liveness, wake, workflows
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer
from ojs_nats.timers.promotions import Promotions

log = logging.getLogger(__name__)

#: Fired timers handled at once per process, and taken in at all (handled, or held until due).
CONCURRENCY = 256
ADMITTED = 2_048
#: A timer delivered this little early (the schedule's lead, storage/timers.py) is held in
#: memory until due: cheaper than handing it back to JetStream and as precise. Longer: NAK.
HOLD_MAX_MS = 1_000
RETRY_AFTER_ERROR_MS = 1_000

Handler = Callable[[Context, FiredTimer], Awaitable[None]]
#: Use case per timer kind.
HANDLERS: dict[str, Handler] = {
    "job": wake.on_job_timer,
    "finished": finish.on_job_finished,
    "cron": cron.on_tick,
    "workflow": workflows.on_repair,
    "lease": leases.on_lease_timer,
    "worker": liveness.on_worker_timer,
}


class TimerRunner:
    def __init__(self, ctx: Context, concurrency: int = CONCURRENCY) -> None:
        self._ctx = ctx
        self._slots = asyncio.Semaphore(concurrency)
        self._admitted = asyncio.Semaphore(max(ADMITTED, concurrency))
        self._tasks: set[asyncio.Task[None]] = set()
        self._promotions = Promotions(ctx)

    async def run(self) -> None:
        feed = self._ctx.storage.timers.feed()
        pulling = asyncio.create_task(feed.run(), name="timer-feed")
        try:
            while True:
                getter = asyncio.create_task(feed.take())
                done, _ = await asyncio.wait({getter, pulling}, return_when=asyncio.FIRST_COMPLETED)
                if pulling in done:
                    getter.cancel()
                    pulling.result()  # re-raise: a dead feed must stop the process
                    raise RuntimeError("timer feed stopped")
                timer = getter.result()
                await self._admitted.acquire()
                task = asyncio.create_task(self._dispatch(timer))
                self._tasks.add(task)
                task.add_done_callback(self._finished)
        finally:
            pulling.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pulling

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._admitted.release()

    async def _dispatch(self, timer: FiredTimer) -> None:
        early = timer.due_ms - self._ctx.clock()
        while 0 < early <= HOLD_MAX_MS:
            # asyncio may wake a hair early and the clock counts whole ms: a timer found 1 ms
            # early would go back to JetStream, and under load come back 100s of ms late
            await asyncio.sleep(early / 1000)
            early = timer.due_ms - self._ctx.clock()
        async with self._slots:
            await self._handle(timer)

    async def _handle(self, timer: FiredTimer) -> None:
        handler = HANDLERS.get(timer.kind)
        try:
            early = timer.due_ms - self._ctx.clock()
            if early > 0:
                # Timers are scheduled a little early for precision: hand it back until due.
                await self._ctx.storage.timers.again_in(timer, early)
            elif handler is None:
                log.warning("fired timer of unknown kind %r dropped", timer.kind)
                await self._ctx.storage.timers.done(timer)
            elif timer.kind == "job" and await self._promotions.handled(timer):
                pass
            else:
                await handler(self._ctx, timer)
        except Exception:
            log.exception("timer %s/%s failed; it will be delivered again", timer.kind, timer.key)
            with contextlib.suppress(Exception):
                await self._ctx.storage.timers.again_in(timer, RETRY_AFTER_ERROR_MS)

    async def drain(self) -> None:
        """Let in-flight handlers finish (shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
