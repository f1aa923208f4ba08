"""Progress reports of running jobs, sent at most once a second per job (ojs-progress.md §6).

Reports are fire-and-forget: the latest one wins, a failed one is dropped, and none is sent
after the job finished (the server sets 1.0 on ACK). A report also extends the job's visibility
timeout on the server (§6.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ojs_nats.worker.context import ProgressReport
from ojs_nats.worker.transport import TransportError, WorkerTransport

log = logging.getLogger(__name__)

#: Least time between two reports of one job (§6.2).
MIN_INTERVAL_S = 1.0


class ProgressReporter:
    def __init__(
        self, transport: WorkerTransport, worker_id: str, interval_s: float = MIN_INTERVAL_S
    ):
        self._transport = transport
        self._worker_id = worker_id
        self._interval_s = interval_s
        self._pending: dict[str, ProgressReport] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    def update(self, job_id: str, report: ProgressReport) -> None:
        self._pending[job_id] = report
        if job_id not in self._senders:
            self._senders[job_id] = asyncio.create_task(self._send(job_id))

    def forget(self, job_id: str) -> None:
        """The job finished: drop what was not sent yet."""
        self._pending.pop(job_id, None)
        sender = self._senders.pop(job_id, None)
        if sender is not None:
            sender.cancel()

    async def close(self) -> None:
        senders = list(self._senders.values())
        for sender in senders:
            sender.cancel()
        for sender in senders:
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        self._pending.clear()
        self._senders.clear()

    async def _send(self, job_id: str) -> None:
        try:
            while job_id in self._pending:
                fraction, data = self._pending.pop(job_id)
                body: dict[str, Any] = {"worker_id": self._worker_id}
                if fraction is not None:
                    body["progress"] = fraction
                if data is not None:
                    body["data"] = data
                try:
                    reply = await self._transport.progress(job_id, body)
                    if not reply.ok:
                        log.debug("progress of %s refused: %s", job_id, reply.error_message)
                except TransportError as exc:
                    log.debug("progress of %s not sent: %s", job_id, exc)
                await asyncio.sleep(self._interval_s)
        finally:
            if self._senders.get(job_id) is asyncio.current_task():
                del self._senders[job_id]
