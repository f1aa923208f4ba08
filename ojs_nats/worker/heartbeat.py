"""Registration, heartbeats and deregistration of a worker (ojs-worker-protocol.md §3-§4).

The first BEAT registers; then one goes out every `heartbeat_interval_s`, or three times per
lease when a running job's visibility timeout is shorter, and its answer's `state` goes to the
runtime. The last BEAT (`terminate`, no jobs) deregisters: the HTTP binding has no other call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import Any, Protocol

from ojs_nats.model import ids
from ojs_nats.worker.lifecycle import WorkerState
from ojs_nats.worker.settings import WorkerSettings
from ojs_nats.worker.transport import TransportError, WorkerTransport

log = logging.getLogger(__name__)

#: Leases are extended this many times per visibility timeout.
BEATS_PER_LEASE = 3
#: Never beat more often than this, however short a lease.
MIN_INTERVAL_S = 0.2


class Beating(Protocol):
    """What the heartbeat needs to know of the runtime."""

    worker_id: str
    state: WorkerState

    def active_leases(self) -> dict[str, int | None]:
        """Running jobs: id -> visibility timeout in ms (None if unknown)."""
        ...

    def on_directive(self, directive: object) -> None: ...


def interval_s(default_s: float, visibilities_ms: Iterable[int | None]) -> float:
    """Seconds until the next beat: the configured interval, shortened for short leases."""
    shortest = min((v for v in visibilities_ms if v), default=None)
    if shortest is None:
        return default_s
    return max(MIN_INTERVAL_S, min(default_s, shortest / 1000 / BEATS_PER_LEASE))


class Heartbeat:
    def __init__(
        self, runtime: Beating, transport: WorkerTransport, settings: WorkerSettings
    ) -> None:
        self._runtime = runtime
        self._transport = transport
        self._settings = settings
        self._wake = asyncio.Event()
        self._urgent = False
        self._identity: dict[str, Any] = {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "queues": list(settings.queues),
            "concurrency": settings.concurrency,
            "labels": list(settings.labels),
            "started_at": ids.format_ts(ids.now_ms()),
        }

    def request(self) -> None:
        """Beat now (a handler asked to extend its lease, or the state changed)."""
        self._urgent = True
        self._wake.set()

    def leases_changed(self) -> None:
        """A job started: its lease may need an earlier beat than the one planned."""
        self._wake.set()

    async def run(self) -> None:
        last = time.monotonic()
        while True:
            self._wake.clear()
            due = last + interval_s(
                self._settings.heartbeat_interval_s, self._runtime.active_leases().values()
            )
            if not self._urgent and time.monotonic() < due:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), due - time.monotonic())
                if not self._urgent and time.monotonic() < due:
                    continue  # woken to plan again, not to beat
            self._urgent = False
            last = time.monotonic()
            await self.beat()

    async def register(self) -> None:
        await self.beat()

    async def deregister(self) -> None:
        await self.beat(jobs=[])

    async def beat(self, jobs: list[str] | None = None) -> None:
        """One BEAT; a failure is logged and changes nothing (§4.6)."""
        job_ids = list(self._runtime.active_leases()) if jobs is None else jobs
        body: dict[str, Any] = {
            "worker_id": self._runtime.worker_id,
            "state": str(self._runtime.state),
            # The HTTP binding names the list `active_jobs`; the worker protocol calls it
            # `active_job_ids` and wants a count in `active_jobs`. The list serves both readers.
            "active_jobs": job_ids,
            "active_job_ids": job_ids,
            **self._identity,
        }
        if self._settings.visibility_timeout_ms is not None:
            body["visibility_timeout_ms"] = self._settings.visibility_timeout_ms
        try:
            reply = await self._transport.beat(body)
        except TransportError as exc:
            log.warning("heartbeat failed (will retry): %s", exc)
            return
        if not reply.ok:
            log.warning("heartbeat refused: %s", reply.error_message)
            return
        self._runtime.on_directive(reply.body.get("state"))
