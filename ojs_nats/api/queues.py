"""Queue endpoints (§11)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, ojs_response
from ojs_nats.service import queues

router = APIRouter(prefix="/ojs/v1/queues")


@router.get("")
async def list_queues(request: Request) -> Response:
    return ojs_response(await queues.list_queues(context(request)))
