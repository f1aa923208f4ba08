"""The one place errors become HTTP responses: every failure gets the OJS error shape.

That includes what the framework raises (unknown paths, wrong methods, request validation) and
unexpected exceptions, which become a 500 without internals in the body (they go to the log).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ojs_nats.api.http import ojs_response
from ojs_nats.errors import (
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    OjsError,
)

log = logging.getLogger(__name__)


def request_id(request: Request) -> str:
    return str(request.scope.get("ojs_request_id", ""))


def render(request: Request, error: OjsError) -> Response:
    headers = error.headers()
    retry_after = error.details.get("retry_after_s")
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return ojs_response({"error": error.to_body(request_id(request))}, error.status, headers)


def install(app: FastAPI) -> None:
    async def on_ojs_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OjsError)
        return render(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            error: OjsError = NotFoundError(
                f"No route for {request.method} {request.url.path}.",
                resource_type="route",
                path=request.url.path,
            )
        elif exc.status_code == 405:
            error = MethodNotAllowedError(f"{request.method} is not allowed on {request.url.path}.")
        else:
            error = InvalidRequestError(str(exc.detail))
        return render(request, error)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        return render(request, InvalidRequestError("The request is invalid.", errors=str(exc)))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request, InternalError("An unexpected error occurred."))

    app.add_exception_handler(OjsError, on_ojs_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
