"""A worker whose one handler reports the garbage collector's settings in its process."""

import gc
from typing import Any

from ojs_nats.worker import JobContext, Worker

worker = Worker()


@worker.register("test.gc_settings")
async def gc_settings(ctx: JobContext) -> dict[str, Any]:
    return {"frozen": gc.get_freeze_count(), "threshold": list(gc.get_threshold())}
