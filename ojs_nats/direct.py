"""`DirectTransport`: a worker's FETCH, ACK, FAIL, BEAT and PROGRESS run in the worker process,
through the same service layer as the gateway, straight to JetStream (no HTTP hop).

Every transition is the gateway's own code with its write order, compare-and-sets and events, so
nothing a gateway guarantees changes; what goes is the HTTP request on both sides. The process
that claims a job is also the one that reports it, so its remembered copy of the record spares
the read before the ACK's compare-and-set (over HTTP, only when the same gateway process
answered both). Timers (delays, retries, lease expiry, dead workers) still run in the gateways:
a deployment needs at least one. The worker must see the gateways' server settings (`NATS_URL`,
`OJS_NAMESPACE`, `OJS_REPLICAS`, retention and timeouts: the same environment), since the
transitions it makes follow them.

Answers are shaped as the HTTP binding shapes them, so the worker runtime cannot tell the
transports apart. JetStream unavailable (503) is retried until a report's deadline, as an HTTP
worker retries a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ojs_nats.config import Settings
from ojs_nats.errors import InvalidRequestError, OjsError
from ojs_nats.model import envelope, ids
from ojs_nats.model import progress as progress_model
from ojs_nats.service import ack, beat, fail, fetch, progress
from ojs_nats.service.context import Context
from ojs_nats.storage import Storage
from ojs_nats.worker.transport import RETRY_STATUSES, Backoff, Fetched, Reply, TransportError

log = logging.getLogger(__name__)

#: How long an operation without a deadline (FETCH, BEAT) waits for the first connection.
CONNECT_WAIT_S = 5.0

_Operation = Callable[[Context], Awaitable[dict[str, Any]]]


class DirectTransport:
    """`WorkerTransport` over JetStream; connects on first use, drains on `close()`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ctx: Context | None = None
        #: The first connection: it retries until NATS answers, so operations wait for it
        #: only as long as their deadline allows.
        self._opening: asyncio.Task[Context] | None = None

    def describe(self) -> str:
        urls = ",".join(self._settings.nats_urls)
        return f"JetStream directly ({urls}, namespace {self._settings.namespace})"

    async def close(self) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._opening
        if self._ctx is not None:
            self._ctx.draining = True
            await self._ctx.storage.close()
            self._ctx = None

    async def _context(self, deadline: float | None) -> Context:
        if self._ctx is not None:
            return self._ctx
        if self._opening is None or (self._opening.done() and self._opening.exception()):
            self._opening = asyncio.create_task(self._open(), name="direct-transport-connect")
        wait = CONNECT_WAIT_S if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return await asyncio.wait_for(asyncio.shield(self._opening), wait)
        except TimeoutError:
            raise TransportError("NATS not reachable yet (still trying to connect)") from None
        except Exception as exc:  # provisioning failed: the next operation tries again
            raise TransportError(f"cannot use NATS: {type(exc).__name__} {exc}") from exc

    async def _open(self) -> Context:
        storage = await Storage.open(self._settings, name="ojs-nats-worker")
        source = f"ojs://{self._settings.service_name}/worker/{socket.gethostname()}"
        self._ctx = Context(storage, self._settings, source=source)
        return self._ctx

    # ------------------------------------------------------------ operations
    async def fetch(
        self,
        queues: tuple[str, ...],
        count: int,
        worker_id: str,
        visibility_ms: int | None,
        wait_ms: int = 0,
    ) -> Fetched:
        try:
            names = list(dict.fromkeys(envelope.validate_queue_name(q) for q in queues))
        except InvalidRequestError as exc:
            raise TransportError(f"fetch refused: {exc.message}") from exc
        wait = max(0, min(wait_ms, fetch.MAX_WAIT_MS))

        async def claim(ctx: Context) -> dict[str, Any]:
            jobs = await fetch.fetch(ctx, names, count, worker_id, visibility_ms, wait)
            return {"jobs": jobs}

        reply = await self._run(claim, deadline=None)
        if not reply.ok:
            raise TransportError(f"fetch refused: {reply.error_message}")
        return Fetched(reply.body["jobs"], fetch.MAX_WAIT_MS)

    async def ack(self, job_id: str, worker_id: str, result: Any, deadline: float) -> Reply:
        async def settle(ctx: Context) -> dict[str, Any]:
            job = await ack.ack(ctx, job_id, result, worker_id)
            return {"acknowledged": True, "job_id": job_id, "state": job["state"], "job": job}

        return await self._run(settle, deadline, job_id)

    async def ack_batch(self, worker_id: str, acks: list[dict[str, Any]], deadline: float) -> Reply:
        pairs = [(str(item["job_id"]), item.get("result")) for item in acks]

        async def settle(ctx: Context) -> dict[str, Any]:
            outcomes = await ack.ack_many(ctx, pairs, worker_id)
            for outcome in outcomes:
                if isinstance(outcome, OjsError) and outcome.status in RETRY_STATUSES:
                    raise outcome  # JetStream unavailable: the batch is tried again
            return ack.batch_answer(pairs, outcomes, _request_id())

        return await self._run(settle, deadline)

    async def fail(
        self,
        job_id: str,
        worker_id: str,
        error: dict[str, Any],
        deadline: float,
        requeue: bool = False,
    ) -> Reply:
        async def settle(ctx: Context) -> dict[str, Any]:
            job = await fail.fail(ctx, job_id, error, worker_id, requeue)
            return {"job_id": job_id, "state": job["state"], "job": job}

        return await self._run(settle, deadline, job_id)

    async def beat(self, body: dict[str, Any], deadline: float | None = None) -> Reply:
        worker_id = str(body["worker_id"])
        listed = body.get("active_jobs")
        job_ids = [j for j in listed if isinstance(j, str) and ids.is_uuid7(j)] if listed else []
        visibility = body.get("visibility_timeout_ms")

        async def report(ctx: Context) -> dict[str, Any]:
            return await beat.beat(
                ctx, worker_id, job_ids, visibility if isinstance(visibility, int) else None, body
            )

        return await self._run(report, deadline)

    async def progress(self, job_id: str, body: dict[str, Any]) -> Reply:
        async def report(ctx: Context) -> dict[str, Any]:
            update = progress_model.validate(body)
            return await progress.report(ctx, job_id, update, body.get("worker_id"))

        return await self._run(report, deadline=None, job_id=job_id)

    # ------------------------------------------------------------ the call loop
    async def _run(self, operation: _Operation, deadline: float | None, job_id: str = "") -> Reply:
        """Run `operation` as the gateway would answer it; retry while JetStream is unavailable
        until `deadline` (monotonic; None: once).

        Raises:
            TransportError: no answer in time.
        """
        tries = 0
        backoff = Backoff()
        while True:
            tries += 1
            try:
                ctx = await self._context(deadline)
                return Reply(200, await operation(ctx), tries)
            except OjsError as exc:
                if exc.status not in RETRY_STATUSES:
                    return Reply(exc.status, {"error": exc.to_body(_request_id())}, tries)
                problem = f"{exc.code}: {exc.message}"
            except TransportError as exc:
                problem = str(exc)
            except Exception as exc:
                # What a gateway answers with a 500: logged here, since no gateway logs it.
                log.exception("worker operation failed unexpectedly (job %s)", job_id or "-")
                error = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
                return Reply(500, {"error": error}, tries)
            if deadline is None:
                raise TransportError(f"gave up after {tries} tries; last: {problem}")
            await backoff.pause(deadline, tries, problem)


def _request_id() -> str:
    return "direct_" + ids.uuid7()
