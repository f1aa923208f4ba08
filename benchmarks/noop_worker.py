"""The no-op job of S4 and S6, for the `ojs_nats` worker runtime.

    ojs-nats worker noop_worker:worker        (run from benchmarks/; the scripts start it)

Each job does one round trip to the benchmark's completion counter (`BENCH_COUNTER_PORT` on
127.0.0.1), the smallest observable job, as the peers' `INCR bench:done` on Redis.
`bench.timed` sends its first argument (the enqueue time) so the counter can record the
job's end-to-end latency. Queues, concurrency and gateways come from the `OJS_*` variables.
"""

from __future__ import annotations

import asyncio
import os

from ojs_nats.worker import JobContext, Worker

worker = Worker()

_PORT = int(os.environ.get("BENCH_COUNTER_PORT", "0"))
_idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []


async def _report(line: bytes) -> None:
    """Send one line, wait for the one-byte answer (connections are reused, one per job
    running at once)."""
    conn = _idle.pop() if _idle else await asyncio.open_connection("127.0.0.1", _PORT)
    reader, writer = conn
    writer.write(line)
    await reader.readexactly(1)
    _idle.append(conn)


@worker.register("bench.noop")
async def noop(ctx: JobContext) -> None:
    await _report(b"\n")


@worker.register("bench.timed")
async def timed(ctx: JobContext) -> None:
    sent = ctx.args[0] if ctx.args else ""
    await _report(f"{sent}\n".encode())
