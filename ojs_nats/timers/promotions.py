"""Promotions: due job timers gathered while a batch is written go out together in the next.

Under load (100,000 delayed jobs due within a minute, or a wave of retries), one promotion at a
time costs four JetStream round trips per job. Job timers the runner is about to handle are
passed through here first; `wake.promote_many` handles the ones that make a job available as
one batch and hands the rest back. When idle, a timer waits for nothing: a batch of one is
handed straight back.

Up to `WRITERS` batches are written at once: a batch spends about half its time on follow-ups
(events, counters, timer acks) after its jobs became available, and timers that fell due
meanwhile should not wait for those.
"""

from __future__ import annotations

import asyncio
import logging

from ojs_nats.service import wake
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer

log = logging.getLogger(__name__)


#: Batches written at once per process.
WRITERS = 2


class Promotions:
    def __init__(self, ctx: Context, writers: int = WRITERS) -> None:
        self._ctx = ctx
        self._pending: list[tuple[FiredTimer, asyncio.Future[bool]]] = []
        self._max_writers = writers
        self._writers = 0  # counted down by the writer itself, when it ends: no gap
        self._tasks: set[asyncio.Task[None]] = set()

    async def handled(self, timer: FiredTimer) -> bool:
        """True if the timer was handled in a batch; False: the caller handles it alone."""
        if not wake.promotes_in_batches(self._ctx):
            return False  # no batch can form: spare every timer the hop through a task
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((timer, waiter))
        if self._writers < self._max_writers:
            self._writers += 1
            writer = asyncio.create_task(self._run())
            self._tasks.add(writer)
            writer.add_done_callback(self._tasks.discard)
        return await waiter

    async def _run(self) -> None:
        batch: list[tuple[FiredTimer, asyncio.Future[bool]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    left = await wake.promote_many(self._ctx, [timer for timer, _ in batch])
                except Exception:
                    log.warning(
                        "batched promotion failed; timers handled one by one", exc_info=True
                    )
                    left = [timer for timer, _ in batch]
                back = {id(timer) for timer in left}
                for timer, waiter in batch:
                    if not waiter.done():
                        waiter.set_result(id(timer) not in back)
                batch = []
        finally:
            self._writers -= 1
            if not self._writers:  # cancelled: nobody else will take what is pending
                batch, self._pending = batch + self._pending, []
            for _, waiter in batch:  # their timers go the one-by-one way
                if not waiter.done():
                    waiter.set_result(False)
