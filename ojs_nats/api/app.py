"""The gateway application: `create_app`, its lifespan (connect, provision, timers) and drain.

The app keeps no job state: everything lives in JetStream, so any number of replicas can serve
the same deployment. On shutdown it first fails readiness and stops handing out jobs (`drain.py`),
lets in-flight requests finish, then drains the NATS connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ojs_nats import __version__, heap
from ojs_nats.api import (
    admin,
    admin_queues,
    admin_workers,
    batch,
    cron,
    dead_letter,
    drain,
    errors,
    events,
    fastpath,
    jobs,
    progress,
    queues,
    schemas,
    system,
    workers,
    workflows,
)
from ojs_nats.api.http import OJS_MEDIA_TYPE
from ojs_nats.config import Settings
from ojs_nats.errors import InternalError, OjsError, UnsupportedError
from ojs_nats.model import ids
from ojs_nats.service.context import Context
from ojs_nats.storage import Storage
from ojs_nats.timers.runner import TimerRunner

log = logging.getLogger(__name__)

#: The spec version this server implements, and the `OJS-Version` request values naming it
#: ("1", "1.0", "1.0.x", "1.0.0-rc.1"). HTTP binding §3.2: any other requested version is a
#: 422 `unsupported`. The manifest (how clients discover the version) answers regardless.
OJS_VERSION = "1.0"
#: ojs-errors.md ERR-006: every 429 and 503 carries `Retry-After`; errors that know better
#: (backpressure) set their own, the rest get this many seconds.
_RETRY_AFTER_STATUSES = frozenset({429, 503})
DEFAULT_RETRY_AFTER_S = b"1"
_SUPPORTED_VERSION = re.compile(r"^1(\.0(\.\d+)?(-[0-9A-Za-z.-]+)?)?$")


def unsupported_version(scope: Scope) -> str | None:
    """The request's `OJS-Version` if it names a version this server does not implement."""
    path = scope.get("path", "")
    if not path.startswith("/ojs/v1/") and path != "/ojs/v1":
        return None
    for name, value in scope["headers"]:
        if name == b"ojs-version":
            requested = value.decode("latin-1").strip()
            return None if _SUPPORTED_VERSION.match(requested) else requested[:64]
    return None


class OjsHeaders:
    """Pure ASGI middleware: request ids, `OJS-Version` (sent and negotiated), a default
    `Retry-After` on 429/503 (ojs-errors.md ERR-006) and a last-resort 500 in OJS shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id" and value:
                request_id = value.decode("latin-1")[:200]
                break
        if not request_id:
            request_id = "req_" + ids.uuid7()
        scope["ojs_request_id"] = request_id
        extra = [
            (b"ojs-version", OJS_VERSION.encode()),
            (b"x-request-id", request_id.encode("latin-1")),
        ]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", [])) + extra
                if message.get("status") in _RETRY_AFTER_STATUSES and not any(
                    name.lower() == b"retry-after" for name, _ in headers
                ):
                    headers.append((b"retry-after", DEFAULT_RETRY_AFTER_S))
                message["headers"] = headers
            await send(message)

        requested = unsupported_version(scope)
        if requested is not None:
            error = UnsupportedError(
                f"OJS-Version '{requested}' is not supported; this server implements "
                f"{OJS_VERSION}.",
                requested_version=requested,
                supported_versions=[OJS_VERSION],
            )
            await _send_error(send_with_headers, error, request_id)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if started:
                # The framework's error handler has answered (in OJS shape) and logged it.
                return
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await _send_error(
                send_with_headers, InternalError("An unexpected error occurred."), request_id
            )


async def _send_error(send: Send, error: OjsError, request_id: str) -> None:
    """Answer with `error` in OJS shape, below the framework (no handler runs)."""
    body = orjson.dumps({"error": error.to_body(request_id)})
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", OJS_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Gateway:
    """Process-level resources of one gateway: storage, context and the timer runner."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.ctx: Context | None = None
        self.runner: TimerRunner | None = None
        self._runner_task: asyncio.Task[None] | None = None

    async def start(self) -> Context:
        storage = await Storage.open(self.settings)
        self.ctx = Context(storage, self.settings)
        self.runner = TimerRunner(self.ctx)
        self._runner_task = asyncio.create_task(self.runner.run(), name="timer-runner")
        self._runner_task.add_done_callback(_stop_on_failure)
        return self.ctx

    async def stop(self) -> None:
        # uvicorn has stopped accepting and finished in-flight requests before this runs.
        if self.ctx is not None:
            self.ctx.draining = True
        if self._runner_task is not None:
            self._runner_task.remove_done_callback(_stop_on_failure)
            self._runner_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner_task
        if self.runner is not None:
            await self.runner.drain()
        if self.ctx is not None:
            try:
                await asyncio.wait_for(self.ctx.storage.close(), drain.NATS_DRAIN_TIMEOUT_S)
            except TimeoutError:
                log.warning("NATS did not drain in %g s; closing", drain.NATS_DRAIN_TIMEOUT_S)


def _stop_on_failure(task: asyncio.Task[None]) -> None:
    """A dead timer runner means timers stop firing: stop the process rather than limp on."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.critical("timer runner died: %r; stopping the gateway", exc)
        os.kill(os.getpid(), signal.SIGTERM)


class GatewayApp(FastAPI):
    """FastAPI with the hot endpoints served first from a direct route table (`fastpath`).

    `OjsHeaders` wraps every HTTP request here, fast or not, so request ids, `OJS-Version` and
    the last-resort 500 are the same on every route.
    """

    _entry: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if self._entry is None:
            self._entry = OjsHeaders(fastpath.FastRoutes(self, super().__call__))
        await self._entry(scope, receive, send)


def create_served_app() -> FastAPI:
    """The app as `ojs-nats serve` runs it under uvicorn: with the SIGTERM drain."""
    return create_app(handle_signals=True)


def create_app(settings: Settings | None = None, handle_signals: bool = False) -> FastAPI:
    """The gateway app. `handle_signals` wraps the server's SIGTERM/SIGINT handlers (see
    `drain.py`); leave it off when the app runs in-process (tests)."""
    settings = settings or Settings.from_env()
    gateway = Gateway(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        app.state.ctx = await gateway.start()
        if handle_signals:  # served by uvicorn, the process is ours (not a test's)
            drain.Drain(app.state.ctx).install()
            heap.settle_after_start()
        log.info(
            "ojs-nats gateway ready (NATS %s, namespace %s)",
            ",".join(settings.nats_urls),
            settings.namespace,
        )
        try:
            yield {}
        finally:
            await gateway.stop()

    app = GatewayApp(
        title="ojs-nats",
        version=__version__,
        lifespan=lifespan,
        docs_url="/ojs/docs",
        redoc_url=None,
        openapi_url="/ojs/openapi.json",
    )
    app.state.gateway = gateway
    app.state.settings = settings
    errors.install(app)
    for module in (
        jobs,
        batch,
        progress,
        workers,
        queues,
        admin_queues,
        admin_workers,
        dead_letter,
        events,
        cron,
        workflows,
        schemas,
        system,
    ):
        app.include_router(module.router)
    if settings.enable_test_reset:
        app.include_router(admin.router)
    return app
