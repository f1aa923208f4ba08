"""Worker listing under `/ojs/v1/admin/workers` (ojs-admin-api.md §9.1, §9.2)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, ojs_response
from ojs_nats.service import worker_registry

router = APIRouter(prefix="/ojs/v1/admin/workers")


@router.get("")
async def list_workers(request: Request) -> Response:
    return ojs_response(await worker_registry.list_workers(context(request)))


@router.get("/{worker_id}")
async def get_worker(request: Request, worker_id: str) -> Response:
    return ojs_response({"worker": await worker_registry.get_worker(context(request), worker_id)})
