"""`JobContext`: what a handler and each execution middleware get for one run of one job.

The job (ojs-middleware.md §4.4), a per-run `metadata` dict, and the ways back to the worker:
`heartbeat()`, `progress()`, `set_result()`. These only schedule work on the worker's loop, so
sync handlers may call them from their thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("ojs_nats.worker.job")

#: A progress report: (fraction 0..1 or None, structured data or None).
ProgressReport = tuple[float | None, dict[str, Any] | None]


class JobContext:
    def __init__(
        self,
        job: dict[str, Any],
        worker_id: str,
        loop: asyncio.AbstractEventLoop,
        on_heartbeat: Callable[[], None],
        on_progress: Callable[[str, ProgressReport], None],
    ) -> None:
        #: The job as FETCH returned it (the OJS envelope, state `active`).
        self.job = job
        self.worker_id = worker_id
        #: Scratch space scoped to this run, for middleware and the handler.
        self.metadata: dict[str, Any] = {}
        #: Set when the worker gives up on this run (grace period over, or timeout); sync
        #: handlers that run long should check it and return.
        self.cancelled = threading.Event()
        self.log = logging.LoggerAdapter(
            log, {"job_id": self.id, "job_type": self.type, "queue": self.queue}
        )
        self._loop = loop
        self._on_heartbeat = on_heartbeat
        self._on_progress = on_progress
        self._result: Any = None
        self._result_set = False

    # ------------------------------------------------------------ the job
    @property
    def id(self) -> str:
        return str(self.job["id"])

    @property
    def type(self) -> str:
        return str(self.job.get("type", ""))

    @property
    def queue(self) -> str:
        return str(self.job.get("queue", "default"))

    @property
    def args(self) -> list[Any]:
        args = self.job.get("args")
        return list(args) if isinstance(args, list) else []

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.job.get("meta")
        return dict(meta) if isinstance(meta, dict) else {}

    @property
    def attempt(self) -> int:
        """1 on the first run, 2 on the first retry, ..."""
        return int(self.job.get("attempt") or 1)

    @property
    def timeout_s(self) -> float | None:
        """The job's execution timeout (`timeout_ms`, or `timeout` in seconds), if it has one."""
        if isinstance(self.job.get("timeout_ms"), int | float) and self.job["timeout_ms"] > 0:
            return float(self.job["timeout_ms"]) / 1000
        if isinstance(self.job.get("timeout"), int | float) and self.job["timeout"] > 0:
            return float(self.job["timeout"])
        return None

    # ------------------------------------------------------------ back to the worker
    def heartbeat(self) -> None:
        """Extend the job's visibility timeout now instead of at the next regular beat."""
        self._loop.call_soon_threadsafe(self._on_heartbeat)

    def progress(self, fraction: float | None = None, data: dict[str, Any] | None = None) -> None:
        """Report progress (ojs-progress.md): a fraction 0.0-1.0 and/or structured data.

        Fire-and-forget: reports are sent at most once a second per job (the latest wins) and a
        failed report never affects the job.
        """
        if fraction is None and data is None:
            raise ValueError("report a fraction, data, or both")
        if fraction is not None:
            fraction = min(1.0, max(0.0, float(fraction)))
        self._loop.call_soon_threadsafe(self._on_progress, self.id, (fraction, data))

    def set_result(self, value: Any) -> None:
        """The job's result, for handlers (or middleware) that do not return it."""
        self._result = value
        self._result_set = True

    def result_or(self, returned: Any) -> Any:
        """What to ACK with: the returned value, else one given to `set_result`."""
        if returned is None and self._result_set:
            return self._result
        return returned
