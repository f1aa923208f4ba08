"""Batched ACKs: results reported while one ACK request is in flight go out together.

ojs-nats gateways accept `POST /ojs/v1/workers/ack/batch` (an extension: many ACKs per request,
each settled exactly as a single ACK). A worker finishing many short jobs then spends one
request per batch instead of one per job. Against a server without the extension (404/405) the
batcher falls back, for good, to one `POST /workers/ack` per job, so the worker still works with
any OJS server. Each caller gets the same `Reply` a single ACK would have given it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ojs_nats.worker.transport import Reply, TransportError, WorkerTransport

#: Most ACKs per request (the gateway's limit is 1,000).
MAX_BATCH = 500
#: What a per-item error code would have been as an HTTP status on a single ACK.
_STATUS_OF = {"not_found": 404, "conflict": 409, "duplicate": 409, "invalid_request": 400}

_Pending = tuple[str, Any, float, "asyncio.Future[Reply]"]


class AckBatcher:
    def __init__(self, transport: WorkerTransport, worker_id: str) -> None:
        self._transport = transport
        self._worker_id = worker_id
        self._pending: list[_Pending] = []
        self._running: asyncio.Task[None] | None = None
        #: False once the server answered that it has no batch endpoint.
        self.batching = True

    async def ack(self, job_id: str, result: Any, deadline: float) -> Reply:
        if not self.batching:
            return await self._transport.ack(job_id, self._worker_id, result, deadline)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending.append((job_id, result, deadline, future))
        if self._running is None:
            self._running = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._send(batch)
        finally:
            self._running = None

    async def _send(self, batch: list[_Pending]) -> None:
        acks = []
        for job_id, result, _, _ in batch:
            item: dict[str, Any] = {"job_id": job_id}
            if result is not None:
                item["result"] = result
            acks.append(item)
        deadline = min(d for _, _, d, _ in batch)
        try:
            reply = await self._transport.ack_batch(self._worker_id, acks, deadline)
        except TransportError as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        results = reply.body.get("results")
        if reply.status in (404, 405) or not reply.ok or not isinstance(results, list):
            if reply.status in (404, 405):
                self.batching = False  # not an ojs-nats gateway: single ACKs from now on
            await asyncio.gather(*(self._single(item) for item in batch))
            return
        for index, (*_, future) in enumerate(batch):
            outcome = results[index] if index < len(results) else None
            if not future.done():
                future.set_result(_item_reply(outcome, reply.tries))

    async def _single(self, item: _Pending) -> None:
        job_id, result, deadline, future = item
        try:
            reply = await self._transport.ack(job_id, self._worker_id, result, deadline)
        except TransportError as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(reply)


def _item_reply(outcome: object, tries: int) -> Reply:
    """One item of a batch answer as the reply a single ACK would have had."""
    if not isinstance(outcome, dict):
        return Reply(500, {}, tries)  # the server left this one out: treat as failed
    if outcome.get("acknowledged"):
        return Reply(200, outcome, tries)
    error = outcome.get("error")
    if not isinstance(error, dict):
        return Reply(500, {}, tries)
    return Reply(_STATUS_OF.get(str(error.get("code")), 500), {"error": error}, tries)
