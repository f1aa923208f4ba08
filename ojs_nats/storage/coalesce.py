"""Group commit: small writes asked for while one is in flight go out together in the next.

Events and counter increments follow every job transition. Under load, many transitions finish
at once; instead of one JetStream request each, a `GroupCommit` sends what has gathered since
the last send in one pipelined burst (counters merged per subject first). When idle nothing
waits: the first write starts a send at once. Every caller still returns only after its own
writes were acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class GroupCommit(Generic[Item]):
    def __init__(self, send: Callable[[list[Item]], Awaitable[None]]) -> None:
        self._send = send
        self._items: list[Item] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, items: list[Item]) -> None:
        """Write `items` in the next send; returns once that send was acknowledged."""
        if not items:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.extend(items)
        self._waiters.append(waiter)
        if self._running is None:
            self._running = asyncio.create_task(self._run())
        await waiter

    async def _run(self) -> None:
        waiters: list[asyncio.Future[None]] = []
        try:
            while self._items:
                items, waiters = self._items, self._waiters
                self._items, self._waiters = [], []
                try:
                    await self._send(items)
                except Exception as exc:  # every caller of this send sees its failure
                    _settle(waiters, exc)
                else:
                    _settle(waiters, None)
                waiters = []
        finally:
            self._running = None
            # Cancelled (shutdown): nobody may wait forever for a send that will not happen.
            _settle(waiters + self._waiters, asyncio.CancelledError())


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
