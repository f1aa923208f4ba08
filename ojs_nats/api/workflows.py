"""Workflow endpoints (ojs-workflows.md §11): create, read, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, json_body, ojs_response
from ojs_nats.service import workflows

router = APIRouter(prefix="/ojs/v1/workflows")


@router.post("")
async def create_workflow(request: Request) -> Response:
    workflow = await workflows.create(context(request), await json_body(request))
    return ojs_response(
        {"workflow": workflow}, 201, {"Location": f"/ojs/v1/workflows/{workflow['id']}"}
    )


@router.get("/{workflow_id}")
async def get_workflow(request: Request, workflow_id: str) -> Response:
    return ojs_response({"workflow": await workflows.get(context(request), workflow_id)})


@router.delete("/{workflow_id}")
async def cancel_workflow(request: Request, workflow_id: str) -> Response:
    return ojs_response({"workflow": await workflows.cancel(context(request), workflow_id)})
