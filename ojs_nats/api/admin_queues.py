"""Queue administration under `/ojs/v1/admin/queues` (ojs-admin-api.md §6, ojs-backpressure.md
§6.2, ojs-rate-limiting.md §7.2): the control-plane spelling of the queue endpoints, for
dashboards and the Kubernetes operator. Same settings and semantics as `/ojs/v1/queues`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, json_body, ojs_response
from ojs_nats.api.queues import checked_name
from ojs_nats.errors import InvalidRequestError, NotFoundError
from ojs_nats.service import queue_config, queues, stats
from ojs_nats.service.context import Context

router = APIRouter(prefix="/ojs/v1/admin/queues")


@router.get("")
async def list_queues(request: Request) -> Response:
    listing = await queues.list_queues(context(request))
    names = [q["name"] for q in listing]
    items = list(await asyncio.gather(*(_detail(context(request), name) for name in names)))
    return ojs_response(
        {
            "items": items,
            "pagination": {"total": len(items), "page": 1, "per_page": max(len(items), 1)},
        }
    )


@router.get("/{name}")
async def get_queue(request: Request, name: str) -> Response:
    return ojs_response(await _detail(context(request), checked_name(name)))


@router.post("/{name}/{action}")
async def pause_or_resume(request: Request, name: str, action: str) -> Response:
    """`POST .../{name}/pause` and `POST .../{name}/resume`."""
    if action not in ("pause", "resume"):
        raise NotFoundError(f"No admin queue action '{action}'; use pause or resume.")
    return await _set_paused(request, name, action == "pause")


@router.put("/{name}/config")
async def put_config(request: Request, name: str) -> Response:
    ctx = context(request)
    name = checked_name(name)
    await queue_config.update(ctx, name, await json_body(request))
    return ojs_response(await _detail(ctx, name))


@router.put("/{name}/rate-limit")
async def put_rate_limit(request: Request, name: str) -> Response:
    """`{"concurrency": N, "rate": {"limit", "period"}, "throttle": {...}}` (§7.2)."""
    body = await json_body(request)
    unknown = sorted(set(body) - {"concurrency", "rate", "throttle"})
    if unknown:
        raise InvalidRequestError(
            f"Unknown rate-limit fields: {', '.join(unknown)}.", field="rate_limit"
        )
    update: dict[str, Any] = {k: body[k] for k in ("concurrency", "throttle") if k in body}
    if "rate" in body:
        update["rate_limit"] = body["rate"]
    ctx = context(request)
    name = checked_name(name)
    await queue_config.update(ctx, name, update)
    return ojs_response(await _detail(ctx, name))


async def _set_paused(request: Request, name: str, paused: bool) -> Response:
    await json_body(request, required=False)
    record = await queue_config.set_paused(context(request), checked_name(name), paused)
    view = queue_config.view(record)
    return ojs_response(
        {"name": view["name"], "paused": view["paused"], "paused_at": view["paused_at"]}
    )


async def _detail(ctx: Context, name: str) -> dict[str, Any]:
    current = (await stats.queue_stats(ctx, name))["queue"]
    view = queue_config.view(ctx.storage.queues.settings(name) or {"name": name})
    counts = {
        state: current[state]
        for state in (
            "available",
            "active",
            "scheduled",
            "retryable",
            "pending",
            "completed",
            "discarded",
            "cancelled",
        )
    }
    return {
        "name": name,
        "state": view["state"],
        "paused": view["paused"],
        "counts": counts,
        "depth": current["depth"],
        "throughput": {
            "processed_per_minute": current["completed_last_minute"],
            "failed_per_minute": current["failed_last_minute"],
            "completed_last_hour": current["completed_last_hour"],
            "throughput_per_second": current["throughput_per_second"],
        },
        "limits": current["limits"],
        "configuration": view["config"],
        "created_at": view["created_at"],
        "updated_at": view["updated_at"],
    }
