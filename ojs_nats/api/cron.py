"""Cron endpoints (ojs-cron.md §8; the suites' `expression` / `job_template` form too).

Responses carry the cron object under both `cron` (what the conformance suites read) and
`cron_job` (what ojs-cron.md names it); lists under `crons` and `cron_jobs`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, json_body, ojs_response, paginate
from ojs_nats.errors import InvalidRequestError
from ojs_nats.service import cron

router = APIRouter(prefix="/ojs/v1/cron")


def _one(item: dict[str, object], status: int = 200) -> Response:
    return ojs_response({"cron": item, "cron_job": item}, status)


@router.get("")
async def list_cron(request: Request) -> Response:
    raw = request.query_params.get("enabled")
    if raw not in (None, "true", "false"):
        raise InvalidRequestError("The 'enabled' parameter must be true or false.", field="enabled")
    items = await cron.list_all(context(request), None if raw is None else raw == "true")
    page, pagination = paginate(request, items, key=lambda c: str(c["name"]))
    return ojs_response(
        {"crons": page, "cron_jobs": page, "count": len(page), "pagination": pagination}
    )


@router.post("")
async def register_cron(request: Request) -> Response:
    item, created = await cron.register(context(request), await json_body(request))
    return _one(item, 201 if created else 200)


@router.get("/{name}")
async def get_cron(request: Request, name: str) -> Response:
    return _one(await cron.get(context(request), name))


@router.patch("/{name}")
async def toggle_cron(request: Request, name: str) -> Response:
    body = await json_body(request)
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise InvalidRequestError("The 'enabled' field (a boolean) is required.", field="enabled")
    return _one(await cron.toggle(context(request), name, enabled))


@router.delete("/{name}")
async def delete_cron(request: Request, name: str) -> Response:
    item = await cron.remove(context(request), name)
    return ojs_response({"cron": item, "cron_job": item, "deleted": True, "name": name})
