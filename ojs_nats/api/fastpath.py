"""A direct route table for the hottest endpoints, in front of the framework.

PUSH, batch PUSH, FETCH, ACK, NACK and BEAT are served by the same endpoint functions the
routers use, but dispatched by an exact (method, path) lookup instead of FastAPI's routing,
dependency solving and middleware stack, which cost about as much CPU as the endpoint's own work
(profiled under load). Headers, request ids and error bodies are the same as on every other route:
`OjsHeaders` wraps this path too, and errors go through the one renderer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ojs_nats.api import batch, errors, jobs, workers
from ojs_nats.errors import OjsError

Endpoint = Callable[[Request], Awaitable[Response]]

ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "/ojs/v1/jobs"): jobs.push_job,
    ("POST", "/ojs/v1/jobs/batch"): batch.push_batch,
    ("POST", "/ojs/v1/workers/fetch"): workers.fetch_route,
    ("POST", "/ojs/v1/workers/ack"): workers.ack_route,
    ("POST", "/ojs/v1/workers/ack/batch"): workers.ack_batch_route,
    ("POST", "/ojs/v1/workers/nack"): workers.nack_route,
    ("POST", "/ojs/v1/workers/heartbeat"): workers.heartbeat_route,
}


class FastRoutes:
    """ASGI app serving ROUTES; anything else goes to `fallback` (the full framework)."""

    def __init__(self, app: FastAPI, fallback: ASGIApp) -> None:
        self.app = app
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = ROUTES.get((scope.get("method", ""), scope.get("path", "")))
        if endpoint is None:
            await self.fallback(scope, receive, send)
            return
        scope["app"] = self.app  # what `request.app` reads (the framework sets it too)
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except OjsError as exc:
            response = errors.render(request, exc)
        await response(scope, receive, send)
