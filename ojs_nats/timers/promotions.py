"""Promotions: due job timers gathered while a batch is written go out together in the next.

Under load (100,000 delayed jobs due within a minute, or a wave of retries), one promotion at a
time costs four JetStream round trips per job. Job timers the runner is about to handle are
passed through here first; `wake.promote_many` handles the ones that make a job available as
one batch and hands the rest back. When idle, a timer waits for nothing: a batch of one is
handed straight back.
"""

from __future__ import annotations

import asyncio
import logging

from ojs_nats.service import wake
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer

log = logging.getLogger(__name__)


class Promotions:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._pending: list[tuple[FiredTimer, asyncio.Future[bool]]] = []
        self._running: asyncio.Task[None] | None = None

    async def handled(self, timer: FiredTimer) -> bool:
        """True if the timer was handled in a batch; False: the caller handles it alone."""
        if not wake.promotes_in_batches(self._ctx):
            return False  # no batch can form: spare every timer the hop through a task
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((timer, waiter))
        if self._running is None:
            self._running = asyncio.create_task(self._run())
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
            self._running = None
            for _, waiter in batch + self._pending:
                if not waiter.done():
                    waiter.set_result(False)
            self._pending = []
