"""The execution middleware chain (ojs-middleware.md §4-§6) and the built-in middleware.

A middleware is `async def mw(ctx, call_next)`; the first added is the outermost. It is named by
the object itself or its name (`name` attribute, else `__name__`) in `insert_before`,
`insert_after` and `remove`. The chain is frozen when the worker starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from ojs_nats.worker.context import JobContext
from ojs_nats.worker.outcome import JobTimeout

CallNext = Callable[[], Awaitable[Any]]
Middleware = Callable[[JobContext, CallNext], Awaitable[Any]]


def name_of(middleware: Middleware | str) -> str:
    if isinstance(middleware, str):
        return middleware
    name = getattr(middleware, "name", None) or getattr(middleware, "__name__", None)
    return str(name or type(middleware).__name__)


class Chain:
    def __init__(self, middleware: Iterable[Middleware] = ()) -> None:
        self._items: list[Middleware] = list(middleware)
        self._frozen = False

    # ------------------------------------------------------------ management (§5.1)
    def add(self, middleware: Middleware) -> None:
        self._check_open()
        self._items.append(middleware)

    def prepend(self, middleware: Middleware) -> None:
        self._check_open()
        self._items.insert(0, middleware)

    def insert_before(self, existing: Middleware | str, middleware: Middleware) -> None:
        self._check_open()
        self._items.insert(self._index(existing), middleware)

    def insert_after(self, existing: Middleware | str, middleware: Middleware) -> None:
        self._check_open()
        self._items.insert(self._index(existing) + 1, middleware)

    def remove(self, existing: Middleware | str) -> None:
        self._check_open()
        del self._items[self._index(existing)]

    def names(self) -> list[str]:
        """The chain, outermost first (§5.4 inspection)."""
        return [name_of(m) for m in self._items]

    def __iter__(self) -> Iterator[Middleware]:
        return iter(tuple(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def freeze(self) -> None:
        self._frozen = True

    def _check_open(self) -> None:
        if self._frozen:
            raise RuntimeError("the middleware chain cannot change while the worker runs")

    def _index(self, existing: Middleware | str) -> int:
        for index, item in enumerate(self._items):
            if item is existing or (isinstance(existing, str) and name_of(item) == existing):
                return index
        raise ValueError(f"middleware {name_of(existing)!r} is not in the chain")

    # ------------------------------------------------------------ execution (§4.2)
    async def run(self, ctx: JobContext, innermost: CallNext) -> Any:
        """Run `innermost` (the handler) wrapped in every middleware, outermost first."""
        items = tuple(self._items)

        async def call(index: int) -> Any:
            if index == len(items):
                return await innermost()
            called = False

            async def call_next() -> Any:
                nonlocal called
                if called:
                    raise RuntimeError(f"middleware {name_of(items[index])!r} called next twice")
                called = True
                return await call(index + 1)

            return await items[index](ctx, call_next)

        return await call(0)


# ---------------------------------------------------------------- built-in middleware


async def log_execution(ctx: JobContext, call_next: CallNext) -> Any:
    """Logs start (debug), completion (info) and failure (warning) with the duration.

    Arguments are never logged (ojs-sdk-guidelines SDK-020)."""
    started = time.monotonic()
    ctx.log.debug("job %s (%s) attempt %d started", ctx.id, ctx.type, ctx.attempt)
    try:
        result = await call_next()
    except asyncio.CancelledError:
        ctx.log.info("job %s (%s) attempt %d stopped by the worker", ctx.id, ctx.type, ctx.attempt)
        raise
    except BaseException as exc:
        ctx.log.warning(
            "job %s (%s) attempt %d failed after %d ms: %s: %s",
            ctx.id,
            ctx.type,
            ctx.attempt,
            (time.monotonic() - started) * 1000,
            type(exc).__name__,
            exc,
        )
        raise
    ctx.log.info(
        "job %s (%s) attempt %d completed in %d ms",
        ctx.id,
        ctx.type,
        ctx.attempt,
        (time.monotonic() - started) * 1000,
    )
    return result


async def enforce_timeout(ctx: JobContext, call_next: CallNext) -> Any:
    """Stops the handler when the job's `timeout_ms` runs out and fails it with `timeout`.

    An async handler is cancelled; a sync one cannot be interrupted, so its `ctx.cancelled` is
    set and its result, whenever it comes, is ignored."""
    limit = ctx.timeout_s
    if limit is None:
        return await call_next()
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            return await call_next()
    except TimeoutError as exc:
        if not deadline.expired():
            raise  # the handler's own TimeoutError, not our deadline
        ctx.cancelled.set()
        raise JobTimeout(
            f"The handler ran longer than the job's timeout of {limit * 1000:g} ms and was stopped."
        ) from exc


def default_chain() -> Chain:
    """Logging outermost, timeout innermost (§8.2); middleware added later runs inside both."""
    return Chain([log_execution, enforce_timeout])
