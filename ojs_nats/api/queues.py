"""Queue endpoints: listing, stats, pause/resume (HTTP binding §11) and configuration
(ojs-queue-config.md §9: create, read, update, delete).

Pause/resume answer `{"queue": {"name", "paused", ...}}` and stats `{"queue": {"name",
"available", ...}}`, the shapes of the conformance suites and the OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, json_body, ojs_response, paginate
from ojs_nats.errors import InvalidRequestError, NotFoundError
from ojs_nats.model import envelope
from ojs_nats.service import queue_config, queues, stats

router = APIRouter(prefix="/ojs/v1/queues")


def checked_name(name: str) -> str:
    """Queue names in paths follow the envelope's rule; anything else is a 400."""
    return envelope.validate_queue_name(name)


@router.get("")
async def list_queues(request: Request) -> Response:
    listed = await queues.list_queues(context(request))
    page, pagination = paginate(request, listed, key=lambda q: str(q["name"]))
    return ojs_response({"queues": page, "pagination": pagination})


@router.post("")
async def create_queue(request: Request) -> Response:
    body = await json_body(request)
    name = body.get("name")
    if name is None:
        raise InvalidRequestError("The 'name' field is required.", field="name")
    config = body.get("config", {})
    if not isinstance(config, dict):
        raise InvalidRequestError("The 'config' field must be an object.", field="config")
    record = await queue_config.create(context(request), checked_name(name), config)
    return ojs_response(
        queue_config.view(record), 201, {"Location": f"/ojs/v1/queues/{record['name']}"}
    )


@router.get("/{name}")
async def get_queue(request: Request, name: str) -> Response:
    ctx = context(request)
    name = checked_name(name)
    current = await stats.queue_stats(ctx, name)
    record = ctx.storage.queues.settings(name) or {"name": name}
    return ojs_response({**queue_config.view(record), "stats": current["queue"]})


@router.get("/{name}/config")
async def get_config(request: Request, name: str) -> Response:
    ctx = context(request)
    record = ctx.storage.queues.settings(checked_name(name))
    if not record:
        raise NotFoundError(f"Queue '{name}' not found.", resource_type="queue", resource_id=name)
    return ojs_response(queue_config.view(record)["config"])


@router.put("/{name}/config")
async def put_config(request: Request, name: str) -> Response:
    ctx = context(request)
    record = await queue_config.update(ctx, checked_name(name), await json_body(request))
    return ojs_response(queue_config.view(record))


@router.delete("/{name}")
async def delete_queue(request: Request, name: str) -> Response:
    body = await json_body(request, required=False)
    strategy = body.get("strategy", "reject")
    if not isinstance(strategy, str):
        raise InvalidRequestError("The 'strategy' field must be a string.", field="strategy")
    result = await queue_config.delete(context(request), checked_name(name), strategy)
    return ojs_response(result)


@router.get("/{name}/stats")
async def queue_stats(request: Request, name: str) -> Response:
    return ojs_response(await stats.queue_stats(context(request), checked_name(name)))


@router.post("/{name}/pause")
async def pause(request: Request, name: str) -> Response:
    return await _set_paused(request, name, True)


@router.post("/{name}/resume")
async def resume(request: Request, name: str) -> Response:
    return await _set_paused(request, name, False)


async def _set_paused(request: Request, name: str, paused: bool) -> Response:
    await json_body(request, required=False)  # an optional body, still checked if present
    record = await queue_config.set_paused(context(request), checked_name(name), paused)
    view = queue_config.view(record)
    return ojs_response(
        {
            "queue": {
                "name": view["name"],
                "paused": view["paused"],
                "status": view["status"],
                "paused_at": view["paused_at"],
            }
        }
    )
