"""One run of one fetched job: run -> outcome -> persist (ACK or NACK).

While the run is `RUNNING` the shutdown may hand the job back (`handed_back`): then nothing is
reported, whatever the handler does later, since the job may be running elsewhere already. Once
the outcome is known (`REPORTING`) the report always goes out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from concurrent.futures import Executor
from typing import Any

from ojs_nats.worker import outcome as outcomes
from ojs_nats.worker.acks import AckBatcher
from ojs_nats.worker.context import JobContext
from ojs_nats.worker.middleware import Chain
from ojs_nats.worker.registry import Registry
from ojs_nats.worker.transport import Reply, TransportError, WorkerTransport

log = logging.getLogger(__name__)

#: States an earlier, landed ACK or NACK of ours leaves a job in.
_REPORTED_STATES = ("completed", "retryable", "discarded")


class Phase(enum.Enum):
    RUNNING = "running"
    REPORTING = "reporting"


@dataclasses.dataclass(slots=True, eq=False)
class Execution:
    ctx: JobContext
    #: The job's visibility timeout in ms, when known (it sets the heartbeat pace).
    visibility_ms: int | None
    phase: Phase = Phase.RUNNING
    #: Set by the shutdown when it gave the job back; the run must then report nothing.
    handed_back: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def job_id(self) -> str:
        return self.ctx.id


@dataclasses.dataclass(frozen=True, slots=True)
class Runner:
    """Everything a run needs from the worker, passed down once."""

    registry: Registry
    chain: Chain
    pool: Executor
    transport: WorkerTransport
    worker_id: str
    report_timeout_s: float
    #: ACKs go through a batcher (one request for many jobs when the server allows it).
    acks: AckBatcher

    async def run(self, execution: Execution) -> None:
        result = await self._outcome(execution.ctx)
        if execution.handed_back:
            return
        execution.phase = Phase.REPORTING  # from here on the shutdown waits for the report
        await self._persist(execution.ctx, result)

    async def _outcome(self, ctx: JobContext) -> outcomes.Outcome:
        handler = self.registry.get(ctx.type)
        if handler is None:
            # Retryable: during a rolling deploy another worker may know the type.
            return outcomes.Failure(
                {
                    "code": "unknown_job_type",
                    "type": "UnknownJobType",
                    "message": f"No handler is registered for job type '{ctx.type}'.",
                    "retryable": True,
                }
            )

        async def innermost() -> Any:
            if handler.is_async:
                return await handler.fn(ctx)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, handler.fn, ctx)

        try:
            returned = await self.chain.run(ctx, innermost)
        except Exception as exc:
            return outcomes.failure(exc)
        return outcomes.success(ctx.result_or(returned))

    async def _persist(self, ctx: JobContext, result: outcomes.Outcome) -> None:
        deadline = time.monotonic() + self.report_timeout_s
        operation = "ack" if isinstance(result, outcomes.Success) else "nack"
        try:
            if isinstance(result, outcomes.Success):
                reply = await self.acks.ack(ctx.id, result.result, deadline)
            else:
                reply = await self.transport.fail(ctx.id, self.worker_id, result.error, deadline)
        except TransportError as exc:
            log.error(
                "%s of job %s could not be delivered (%s); it runs again after its "
                "visibility timeout",
                operation,
                ctx.id,
                exc,
            )
            return
        timed_out = isinstance(result, outcomes.Failure) and result.error.get("code") == "timeout"
        _log_refusal(operation, ctx.id, reply, timed_out)


def _log_refusal(operation: str, job_id: str, reply: Reply, timed_out: bool) -> None:
    if reply.ok:
        return
    state = reply.current_state
    if reply.status == 409 and timed_out:
        # The server enforces the same timeout and often records it first.
        log.info("%s of job %s: the server had timed it out already", operation, job_id)
    elif reply.status == 409 and reply.tries > 1 and state in (None, *_REPORTED_STATES):
        # A try whose answer was lost (gateway killed, timeout) had landed.
        log.info("%s of job %s: already recorded (%s)", operation, job_id, reply.error_message)
    elif reply.status in (404, 409):
        # Cancelled, or the lease ran out (the job is someone else's now) while this one ran.
        log.warning("%s of job %s refused: %s", operation, job_id, reply.error_message)
    else:
        log.error("%s of job %s failed: %s", operation, job_id, reply.error_message)
