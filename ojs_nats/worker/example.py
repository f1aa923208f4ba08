"""The example worker: the standard conformance handlers (ojs-conformance.md §5.4).

    ojs-nats worker ojs_nats.worker.example:worker --queues default

Async and sync handlers, `Retry`, progress reports and the timeout all appear.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from ojs_nats.worker import JobContext, Retry, Worker

log = logging.getLogger(__name__)

#: `test.slow` sleeps this long unless its first argument says otherwise (ms).
DEFAULT_SLOW_MS = 1000
#: `test.timeout` runs "longer than any configured timeout".
FOREVER_S = 24 * 3600.0
#: Exit status of the process `test.panic` crashes.
EXIT_PANIC = 70

worker = Worker()


@worker.register("test.echo")
async def echo(ctx: JobContext) -> list[Any]:
    """Returns its arguments as the result."""
    return ctx.args


@worker.register("test.fail_once")
async def fail_once(ctx: JobContext) -> dict[str, int]:
    """Fails on the first attempt, succeeds on the second."""
    if ctx.attempt < 2:
        raise Retry(f"test.fail_once fails attempt {ctx.attempt} on purpose")
    return {"attempt": ctx.attempt}


@worker.register("test.fail_twice")
async def fail_twice(ctx: JobContext) -> dict[str, int]:
    """Fails on the first two attempts, succeeds on the third."""
    if ctx.attempt < 3:
        raise Retry(f"test.fail_twice fails attempt {ctx.attempt} on purpose")
    return {"attempt": ctx.attempt}


@worker.register("test.fail_always")
async def fail_always(ctx: JobContext) -> None:
    """Always fails with a retryable error."""
    raise Retry(f"test.fail_always fails attempt {ctx.attempt}, as always")


@worker.register("test.slow")
async def slow(ctx: JobContext) -> dict[str, int]:
    """Sleeps for `args[0]` ms (or `{"duration_ms": n}`; default 1 s), reporting progress."""
    duration_ms = _duration_ms(ctx.args)
    step_ms = 250
    elapsed = 0
    while elapsed < duration_ms:
        pause = min(step_ms, duration_ms - elapsed)
        await asyncio.sleep(pause / 1000)
        elapsed += pause
        ctx.progress(elapsed / duration_ms, {"slept_ms": elapsed})
    return {"slept_ms": duration_ms}


@worker.register("test.timeout")
async def timeout(ctx: JobContext) -> None:
    """Runs longer than any configured timeout (the job's `timeout_ms` stops it)."""
    await asyncio.sleep(FOREVER_S)


@worker.register("test.panic")
def panic(ctx: JobContext) -> None:
    """Crashes the worker process, as a worker crash would: the job is neither acknowledged
    nor failed, and comes back after its visibility timeout."""
    log.critical("test.panic: crashing the worker process (job %s)", ctx.id)
    logging.shutdown()
    os._exit(EXIT_PANIC)


@worker.register("test.produce")
def produce(ctx: JobContext) -> Any:
    """Returns a configurable result value: `args[0]` (default `{"produced": true}`)."""
    return ctx.args[0] if ctx.args else {"produced": True}


@worker.register("test.noop")
def noop(ctx: JobContext) -> None:
    """Succeeds immediately with no result."""


def _duration_ms(args: list[Any]) -> int:
    first = args[0] if args else None
    if isinstance(first, dict):
        first = first.get("duration_ms")
    if isinstance(first, int | float) and not isinstance(first, bool) and first >= 0:
        return int(first)
    return DEFAULT_SLOW_MS
