"""Schema endpoints: HTTP binding §15 (by URI) and schema registry §10 (by job type/version).

One path parameter serves both: a URI always has a scheme (`urn:...`, `https:...`) and a job
type never contains `:`, so `GET /schemas/{ref}` is a URI lookup when `ref` has a colon and the
type's latest schema otherwise; `{type}/versions` and `{type}/{version}` are the registry's.
The URI arrives URL-encoded (§15.3); it may contain `/` once decoded, hence `{ref:path}`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, json_body, ojs_response, paginate
from ojs_nats.errors import InvalidRequestError
from ojs_nats.service import schemas
from ojs_nats.service.context import Context

router = APIRouter(prefix="/ojs/v1/schemas")


@router.get("")
async def list_schemas(request: Request) -> Response:
    items = await schemas.list_all(context(request))
    page, pagination = paginate(request, items, key=lambda s: str(s["uri"]))
    return ojs_response({"schemas": page, "pagination": pagination})


@router.post("")
async def register_schema(request: Request) -> Response:
    record = await schemas.register(context(request), await json_body(request))
    return ojs_response({"schema": record}, 201, {"Location": _location(record["uri"])})


async def _resolve(ctx: Context, ref: str) -> dict[str, Any]:
    if ":" in ref:
        return await schemas.get(ctx, ref)
    job_type, _, version = ref.partition("/")
    if not version:
        return await schemas.latest(ctx, job_type)
    return await schemas.of_version(ctx, job_type, version)


@router.get("/{ref:path}")
async def get_schema(request: Request, ref: str) -> Response:
    ctx = context(request)
    if ":" not in ref and ref.endswith("/versions") and ref.count("/") == 1:
        job_type = ref.removesuffix("/versions")
        return ojs_response({"type": job_type, "versions": await schemas.versions(ctx, job_type)})
    return ojs_response({"schema": schemas.full(await _resolve(ctx, ref))})


@router.delete("/{ref:path}")
async def delete_schema(request: Request, ref: str) -> Response:
    ctx = context(request)
    if ":" not in ref and "/" not in ref:
        raise InvalidRequestError(
            "Name the schema to delete by its URI or as {type}/{version}.", field="uri"
        )
    record = await _resolve(ctx, ref)
    await schemas.remove(ctx, record)
    return ojs_response(
        {
            "deleted": True,
            "uri": record["uri"],
            "type": record["type"],
            "version": record["version"],
        }
    )


def _location(uri: str) -> str:
    return "/ojs/v1/schemas/" + quote(uri, safe="")
