"""Small HTTP helpers shared by the routers: the OJS response type and strict body parsing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import Response

from ojs_nats.errors import (
    InvalidPayloadError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from ojs_nats.service.context import Context

OJS_MEDIA_TYPE = "application/openjobspec+json"
_JSON_TYPES = ("application/openjobspec+json", "application/json")

#: List endpoints' page size: default and maximum (HTTP binding §17.1).
DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT = 50, 200

T = TypeVar("T")


def ojs_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response with the OJS media type (no charset suffix: the suites compare exactly)."""
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=OJS_MEDIA_TYPE,
        headers=dict(headers) if headers else None,
    )


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def json_body(
    request: Request, required: bool = True, limit: int | None = None
) -> dict[str, Any]:
    """The request body as a JSON object, enforcing content type and the size limit.

    Args:
        required: False for action endpoints whose body is optional (an empty body is `{}`).
        limit: the size limit in bytes, if not the configured `max_body_bytes`.

    Raises:
        PayloadTooLargeError, UnsupportedMediaTypeError, InvalidPayloadError, InvalidRequestError.
    """
    limit = limit or context(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"The request body exceeds {limit} bytes.", limit_bytes=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"The request body exceeds {limit} bytes.", limit_bytes=limit
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise InvalidPayloadError("The request body is empty; a JSON object is required.")
        return {}
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type and content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"Content-Type '{content_type}' is not accepted; send {OJS_MEDIA_TYPE}"
            " or application/json.",
            content_type=content_type,
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayloadError(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.", field="body")
    return body


def optional_int(
    value: object,
    field: str,
    minimum: int = 1,
    maximum: int | None = None,
    default: int | None = None,
) -> int | None:
    """An optional integer field of a request, range-checked."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"The '{field}' field must be an integer.", field=field)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f" and {maximum}" if maximum is not None else ""
        raise InvalidRequestError(
            f"The '{field}' field must be between {minimum}{bound}.", field=field
        )
    return value


def query_int(
    request: Request, name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidRequestError(
            f"Query parameter '{name}' must be an integer.", field=name
        ) from exc
    if value < minimum:
        raise InvalidRequestError(
            f"Query parameter '{name}' must be at least {minimum}.", field=name
        )
    return min(value, maximum) if maximum is not None else value


def paginate(
    request: Request, items: Sequence[T], key: Callable[[T], str]
) -> tuple[list[T], dict[str, Any]]:
    """One page of `items` (sorted by `key`, unique keys) per HTTP binding §17.

    `limit` (default 50, capped at 200), `offset`, and `cursor`: the `next_cursor` of a
    previous page, which resumes after the last item that page returned (stable when items are
    added or removed meanwhile). Returns the page and its `pagination` object.
    """
    limit = query_int(request, "limit", DEFAULT_PAGE_LIMIT, minimum=1, maximum=MAX_PAGE_LIMIT)
    offset = query_int(request, "offset", 0)
    cursor = request.query_params.get("cursor")
    rest = list(items)
    if cursor:
        rest = [item for item in rest if key(item) > cursor]
    page = rest[offset : offset + limit]
    has_more = offset + len(page) < len(rest)
    pagination: dict[str, Any] = {
        "total": len(items),
        "limit": limit,
        "offset": offset,
        "has_more": has_more,
    }
    if has_more:
        pagination["next_cursor"] = key(page[-1])
    return page, pagination
