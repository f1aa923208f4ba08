"""`Worker`: the fetch loop, the running jobs and the graceful shutdown of one worker process.

`start()` registers, then runs the heartbeat and the fetch loop until a stop (signal, directive,
`stop()`); the shutdown (worker protocol §7) stops fetching, drains for the grace period, hands
back what still runs (NACK `requeue: true`) and deregisters. A side task that dies stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, overload

from ojs_nats import heap
from ojs_nats.model import ids
from ojs_nats.worker import outcome as outcomes
from ojs_nats.worker.acks import AckBatcher
from ojs_nats.worker.context import JobContext
from ojs_nats.worker.execution import Execution, Phase, Runner
from ojs_nats.worker.heartbeat import Heartbeat
from ojs_nats.worker.lifecycle import WorkerState, after_directive, can_move
from ojs_nats.worker.middleware import Middleware, default_chain
from ojs_nats.worker.progress import ProgressReporter
from ojs_nats.worker.registry import Registry
from ojs_nats.worker.settings import WorkerSettings
from ojs_nats.worker.shutdown import Signals
from ojs_nats.worker.transport import Transport, TransportError, WorkerTransport

log = logging.getLogger("ojs_nats.worker")
F = TypeVar("F", bound=Callable[..., Any])

#: How long handing a job back may take before it is left to its visibility timeout.
HAND_BACK_TIMEOUT_S = 5.0
#: Longest pause between fetches after errors.
MAX_ERROR_PAUSE_S = 5.0
#: Most jobs asked for in one FETCH (a worker with more free slots asks again at once).
MAX_FETCH_COUNT = 100
#: How long a FETCH may wait on the server for a job (servers that allow it: ojs-nats
#: gateways). Short enough that a stop waits little for a fetch in flight.
FETCH_WAIT_MS = 2_000
#: Name prefix of the threads that run sync handlers.
THREAD_PREFIX = "ojs-job"


class Worker:
    """An OJS worker: register handlers, then `await worker.start()`.

    Example:
        worker = Worker(queues=["email"], concurrency=5)

        @worker.register("email.send")
        async def send(ctx: JobContext) -> dict:
            return {"sent_to": ctx.args[0]}
    """

    def __init__(
        self,
        settings: WorkerSettings | None = None,
        transport: WorkerTransport | None = None,
        **overrides: Any,
    ) -> None:
        """`transport`: how to reach the server; HTTP to `settings.urls` by default."""
        base = settings or WorkerSettings.from_env()
        self.settings = base.replace(**overrides) if overrides else base
        self.registry = Registry()
        self.middleware = default_chain()
        self.worker_id = ""
        self.state = WorkerState.RUNNING
        self._executions: set[Execution] = set()
        self._started = False
        self._given_transport = transport
        #: What the next idle FETCH asks the server to wait (0 until it said it can).
        self._fetch_wait_ms = 0

    # ------------------------------------------------------------ configuration
    @overload
    def register(self, job_type: str) -> Callable[[F], F]: ...
    @overload
    def register(self, job_type: str, fn: F) -> F: ...
    def register(self, job_type: str, fn: F | None = None) -> Any:
        """Register a handler for `job_type`; usable as `@worker.register("type")`."""
        if fn is None:
            return self.registry.register(job_type)
        return self.registry.register(job_type, fn)

    def use(self, middleware: Middleware) -> Middleware:
        """Append execution middleware (innermost so far); usable as a decorator."""
        self.middleware.add(middleware)
        return middleware

    def configure(self, **changes: Any) -> None:
        """Change settings before `start()` (None values are ignored)."""
        if self._started:
            raise RuntimeError("settings cannot change while the worker runs")
        self.settings = self.settings.replace(**changes)

    def use_transport(self, transport: WorkerTransport) -> None:
        """Reach the server through `transport` instead of HTTP (e.g. `ojs-nats worker
        --direct`, which talks to JetStream through the gateway's service layer)."""
        if self._started:
            raise RuntimeError("the transport cannot change while the worker runs")
        self._given_transport = transport

    # ------------------------------------------------------------ control
    def stop(self) -> None:
        """Begin the graceful shutdown (what SIGTERM does)."""
        if not self._started or self.state is WorkerState.TERMINATE:
            return
        self._set_state(WorkerState.TERMINATE)
        self._stop_at = time.monotonic()
        self._stopping.set()

    def quiet(self) -> None:
        """Stop fetching, keep running what is running (what SIGTSTP does)."""
        if self._started and can_move(self.state, WorkerState.QUIET):
            self._set_state(WorkerState.QUIET)

    def resume(self) -> None:
        """Fetch again after `quiet()` (what SIGCONT does); never after `stop()`."""
        if self._started and self.state is WorkerState.QUIET:
            self._set_state(WorkerState.RUNNING)

    def on_directive(self, directive: object) -> None:
        wanted = after_directive(self.state, directive)
        if wanted is self.state:
            return
        if wanted is WorkerState.QUIET:
            log.warning("server asked this worker to be quiet: no more fetching")
            self.quiet()
        elif wanted is WorkerState.TERMINATE:
            log.warning("server asked this worker to terminate")
            self.stop()

    def _terminating(self) -> bool:
        return self.state is WorkerState.TERMINATE

    def _quiet(self) -> bool:
        return self.state is WorkerState.QUIET

    def active_leases(self) -> dict[str, int | None]:
        return {e.job_id: e.visibility_ms for e in self._executions}

    # ------------------------------------------------------------ main
    async def start(self, handle_signals: bool = False) -> int:
        """Run until stopped and drained. Returns the exit status (0: clean shutdown).

        Args:
            handle_signals: install SIGTERM/SIGINT/SIGTSTP/SIGCONT handlers (the CLI does).
        """
        if self._started:
            raise RuntimeError("a worker runs once; start a new process instead")
        self._prepare()
        settings = self.settings
        signals = None
        if handle_signals:
            signals = Signals(
                self._loop, settings.grace_period_s, self.stop, self.quiet, self.resume
            )
            signals.install()
        try:
            return await self._serve(settle_heap=handle_signals)
        finally:
            if signals is not None:
                signals.restore()
            await self._progress.close()
            await self._transport.close()
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _prepare(self) -> None:
        self._started = True
        self._loop = asyncio.get_running_loop()
        self.worker_id = "worker_" + ids.uuid7()
        self.registry.freeze()
        self.middleware.freeze()
        settings = self.settings
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._stop_at = 0.0
        self._transport: WorkerTransport = self._given_transport or Transport(
            settings.urls, settings.request_timeout_s, max_connections=settings.concurrency + 8
        )
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix=THREAD_PREFIX)
        self._heartbeat = Heartbeat(self, self._transport, settings)
        self._progress = ProgressReporter(self._transport, self.worker_id)
        self._runner = Runner(
            self.registry,
            self.middleware,
            self._pool,
            self._transport,
            self.worker_id,
            settings.report_timeout_s,
            AckBatcher(self._transport, self.worker_id),
        )

    async def _serve(self, settle_heap: bool) -> int:
        await self._heartbeat.register()
        if settle_heap:  # the process is ours (the CLI's), not a test's
            # Start-up done (handlers imported, connected): as in the gateway, keep what exists
            # now out of the collector's walks (S4: the collector took ~9% of a worker's CPU).
            heap.settle_after_start()
        settings = self.settings
        log.info(
            "worker %s started: queues %s, concurrency %d, handlers %s, via %s",
            self.worker_id,
            ",".join(settings.queues),
            settings.concurrency,
            ",".join(self.registry.types()) or "(none)",
            self._transport.describe(),
        )
        beating = asyncio.create_task(self._heartbeat.run(), name="heartbeat")
        fetching = asyncio.create_task(self._fetch_loop(), name="fetch-loop")
        stopping = asyncio.create_task(self._stopping.wait(), name="stop-wait")
        await asyncio.wait({beating, fetching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        status = 0
        for side in (beating, fetching):
            if side.done() and not self._stopping.is_set():
                # A side task must never end on its own: without heartbeats leases run out,
                # without the fetch loop nothing runs. Stop rather than limp on.
                log.critical("worker side task %s ended: %r", side.get_name(), side.exception())
                status = 1
        self.stop()
        stopping.cancel()
        await self._shutdown(fetching, beating)
        log.info("worker %s stopped", self.worker_id)
        return status

    # ------------------------------------------------------------ fetching
    async def _fetch_loop(self) -> None:
        settings = self.settings
        pause_after_error = settings.poll_interval_s
        while self.state is not WorkerState.TERMINATE:
            self._wakeup.clear()
            free = min(settings.concurrency - len(self._executions), MAX_FETCH_COUNT)
            if (
                self.state is WorkerState.QUIET
                or free <= 0
                or (self._executions and free < _refill_at(settings.concurrency))
            ):
                # Wait for a state change or more free slots: one fetch for many slots costs
                # the gateway far less than one per freed slot.
                await self._wakeup.wait()
                continue
            # Wait on the server for a job, busy or not: while the queue is empty, slots freed
            # meanwhile have nothing to fetch, and once a job comes the answer brings it at
            # once (a plain poll would leave it waiting up to `poll_interval`).
            wait_ms = self._fetch_wait_ms
            try:
                fetched = await self._transport.fetch(
                    settings.queues, free, self.worker_id, settings.visibility_timeout_ms, wait_ms
                )
            except TransportError as exc:
                log.warning("fetch failed: %s", exc)
                await self._pause(pause_after_error)
                pause_after_error = min(pause_after_error * 2, MAX_ERROR_PAUSE_S)
                continue
            pause_after_error = settings.poll_interval_s
            self._fetch_wait_ms = min(fetched.wait_max_ms, FETCH_WAIT_MS)
            jobs = fetched.jobs
            if self._terminating() or self._quiet():
                # Claimed while a stop or `quiet` came in (a long poll can be in flight for
                # seconds): give them straight back, unstarted.
                await asyncio.gather(*(self._hand_back(job, started=False) for job in jobs))
                if self._terminating():
                    return
                continue
            for job in jobs:
                self._launch(job)
            if not jobs and not wait_ms:
                # A long poll that came back empty has waited already; a plain poll sleeps.
                await self._pause(settings.poll_interval_s)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    def _launch(self, job: dict[str, Any]) -> None:
        ctx = JobContext(
            job, self.worker_id, self._loop, self._heartbeat.request, self._progress.update
        )
        visibility = self.settings.visibility_timeout_ms or _int_or_none(
            job.get("visibility_timeout_ms")
        )
        # A job's heartbeat timeout (ojs-timeouts.md §5.5) paces the beats like a short lease.
        stall = _int_or_none(job.get("heartbeat_timeout_ms"))
        if stall and (visibility is None or stall < visibility):
            visibility = stall
        execution = Execution(ctx, visibility)
        self._executions.add(execution)
        execution.task = asyncio.create_task(self._runner.run(execution), name=f"job-{ctx.id}")
        execution.task.add_done_callback(lambda task: self._finished(execution, task))
        self._heartbeat.leases_changed()

    def _finished(self, execution: Execution, task: asyncio.Task[None]) -> None:
        self._executions.discard(execution)
        self._progress.forget(execution.job_id)
        self._wakeup.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("job %s: worker error", execution.job_id, exc_info=task.exception())

    def _set_state(self, state: WorkerState) -> None:
        log.info("worker %s: %s -> %s", self.worker_id, self.state, state)
        self.state = state
        self._wakeup.set()
        self._heartbeat.request()  # tell the server at once (graceful-shutdown §5.1)

    # ------------------------------------------------------------ shutdown
    async def _shutdown(self, fetching: asyncio.Task[None], beating: asyncio.Task[None]) -> None:
        deadline = self._stop_at + self.settings.grace_period_s
        # 1. No new FETCH. One already sent is let finish: its jobs are claimed on the server,
        #    and handing them back beats leaving them to a visibility timeout.
        await _wait_until({fetching}, deadline)
        if not fetching.done():
            fetching.cancel()
        # 2. Drain: running jobs get what is left of the grace period. Heartbeats go on.
        if self._executions:
            log.info("draining %d running job(s)", len(self._executions))
            await _wait_until({e.task for e in self._executions if e.task}, deadline)
        # 3. Hand back what is still running, so it runs elsewhere now.
        unfinished = [e for e in self._executions if e.phase is Phase.RUNNING]
        for execution in unfinished:
            execution.handed_back = True
            execution.ctx.cancelled.set()
            if execution.task is not None:
                execution.task.cancel()
        if unfinished:
            log.warning("grace period over: handing back %d running job(s)", len(unfinished))
        await asyncio.gather(*(self._hand_back(e.ctx.job, started=True) for e in unfinished))
        # Outcomes already being reported finish (bounded by their own deadline).
        await _wait_until(
            {e.task for e in self._executions if e.task}, time.monotonic() + HAND_BACK_TIMEOUT_S
        )
        # 4. Deregister: the final heartbeat says `terminate` with no jobs.
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # a dead one was logged
            await beating
        await self._heartbeat.deregister()

    async def _hand_back(self, job: dict[str, Any], started: bool) -> None:
        """NACK with `requeue: true`: the job is available again at once."""
        job_id = str(job["id"])
        error = outcomes.shutdown_body(self.settings.grace_period_s, started, quiet=self._quiet())
        try:
            reply = await self._transport.fail(
                job_id,
                self.worker_id,
                error,
                time.monotonic() + HAND_BACK_TIMEOUT_S,
                requeue=True,
            )
        except TransportError as exc:
            log.error("job %s not handed back (%s): it returns after its lease", job_id, exc)
            return
        if reply.ok:
            log.info("job %s handed back", job_id)
        else:
            log.warning("job %s: hand-back refused: %s", job_id, reply.error_message)


async def _wait_until(tasks: set[asyncio.Task[None]], deadline: float) -> None:
    if tasks:
        await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _refill_at(concurrency: int) -> int:
    """Free slots worth a fetch while other jobs still run (a quarter, at most 25)."""
    return max(1, min(concurrency // 4, 25))
