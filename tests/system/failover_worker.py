"""The worker of the failover test (`ojs-nats worker tests.system.failover_worker:worker`).

Each run of a job appends its id to `$FAILOVER_RUNS_DIR/<pid>.runs` before the (short) work, so
the test can count the jobs that ran more than once across all workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TextIO

from ojs_nats.worker import JobContext, Worker

worker = Worker()
# Ten thousand "completed" lines would cost more CPU than the jobs themselves.
logging.getLogger("ojs_nats.worker.job").setLevel(logging.WARNING)
_runs: list[TextIO] = []


def _record(job_id: str) -> None:
    if not _runs:
        path = os.path.join(os.environ["FAILOVER_RUNS_DIR"], f"{os.getpid()}.runs")
        _runs.append(open(path, "a", buffering=1))  # noqa: SIM115 (open for the process' life)
    _runs[0].write(job_id + "\n")


@worker.register("failover.work")
async def work(ctx: JobContext) -> None:
    _record(ctx.id)
    await asyncio.sleep(float(ctx.args[0]) / 1000 if ctx.args else 0)
