"""Test-only administration: `POST /ojs/v1/admin/reset` wipes all state.

Mounted only when OJS_ENABLE_TEST_RESET=1 (or `ojs-nats dev --enable-test-reset`); otherwise the
path does not exist (404). The conformance runner calls it before every test (--reset-url).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, ojs_response
from ojs_nats.service import admin

router = APIRouter(prefix="/ojs/v1/admin")


@router.post("/reset")
async def reset(request: Request) -> Response:
    await admin.reset(context(request))
    return ojs_response({"reset": True})
