"""A worker whose only handler is sync and ignores cancellation (`time.sleep`), for the test
that such a handler cannot hold a stopping worker past its grace period."""

from __future__ import annotations

import time

from ojs_nats.worker import JobContext, Worker

worker = Worker()


@worker.register("blocking.sleep")
def sleep(ctx: JobContext) -> dict[str, float]:
    seconds = float(ctx.args[0])
    time.sleep(seconds)
    return {"slept_s": seconds}
