"""System endpoints: health, readiness, liveness, the conformance manifest and metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats import __version__
from ojs_nats.api.http import context, ojs_response
from ojs_nats.errors import OjsError

router = APIRouter()

#: The conformance level this build passes in full (see README).
CONFORMANCE_LEVEL = 4


def manifest_body() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "ojs_version": "1.0",
        "implementation": {
            "name": "ojs-nats",
            "version": __version__,
            "language": "python",
            "homepage": "https://github.com/ojs-nats/ojs-nats",
        },
        "conformance_level": CONFORMANCE_LEVEL,
        "conformance_tier": "runtime",
        "protocols": ["http"],
        "backend": "nats",
        "capabilities": {
            "batch_enqueue": True,
            "cron_jobs": True,
            "dead_letter": True,
            "delayed_jobs": True,
            "job_ttl": True,
            "priority_queues": True,
            "rate_limiting": True,
            "schema_validation": True,
            "unique_jobs": {
                "strength": "strong",
                "mechanism": "JetStream KV create-if-absent and compare-and-set per uniqueness key",
            },
            "workflows": True,
            "pause_resume": True,
            "queue_stats": True,
            "queue_config": True,
            "backpressure": True,
            "heartbeat": True,
            "visibility_timeout": True,
            "events_polling": True,
        },
        # Its MUSTs (SR-001..006); validation modes and breaking-change checks are not built.
        "extensions": ["urn:ojs:ext:schema-registry"],
        "unique_job_strength": "strong",
        "endpoints": {"manifest": "/ojs/manifest", "health": "/ojs/v1/health"},
        "durability": {"storage": "nats-jetstream", "acknowledged_writes": True},
    }


@router.get("/ojs/manifest")
async def manifest() -> Response:
    return ojs_response(manifest_body())


async def _backend(request: Request) -> dict[str, Any]:
    ctx = context(request)
    started = time.perf_counter()
    try:
        if not ctx.storage.conn.connected:
            raise OjsError("not connected")
        await ctx.storage.conn.api("$JS.API.INFO")
    except Exception as exc:
        return {"type": "nats", "status": "disconnected", "error": str(exc)[:200]}
    return {
        "type": "nats",
        "status": "ok",
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }


@router.get("/ojs/v1/health")
async def health(request: Request) -> Response:
    backend = await _backend(request)
    gateway = request.app.state.gateway
    healthy = backend["status"] == "ok"
    body = {
        "status": "ok" if healthy else "degraded",
        "version": "1.0",
        "implementation_version": __version__,
        "uptime_seconds": int(time.monotonic() - gateway.started),
        "backend": backend,
    }
    return ojs_response(body, 200 if healthy else 503)


@router.get("/health")
async def liveness() -> Response:
    """Liveness: the process answers (NATS trouble is readiness's business, not a restart's)."""
    return ojs_response({"status": "ok"})


@router.get("/ready")
async def readiness(request: Request) -> Response:
    ctx = context(request)
    if ctx.draining:
        return ojs_response({"status": "draining"}, 503)
    if not ctx.storage.conn.connected:
        return ojs_response({"status": "disconnected"}, 503)
    return ojs_response({"status": "ready"})
