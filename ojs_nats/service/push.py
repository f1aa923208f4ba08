"""PUSH: validate an enqueue request and store the job (ojs-http-binding.md §9.1)."""

from __future__ import annotations

from typing import Any

from ojs_nats.errors import DuplicateError
from ojs_nats.model import envelope, ids
from ojs_nats.model import job as jobs
from ojs_nats.service.apply import commit
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict


async def push(ctx: Context, body: object) -> dict[str, Any]:
    """Store one job; returns the wire job. 201 is only returned after JetStream acked it."""
    now = ctx.clock()
    submission = envelope.parse_submission(body, now)
    change = jobs.new_record(submission, now)
    await ctx.storage.queues.register(submission.queue, ids.format_ts(now))
    try:
        await commit(ctx, change, None)
    except RevisionConflict as exc:
        raise DuplicateError(
            f"A job with id '{submission.id}' already exists.", existing_job_id=submission.id
        ) from exc
    return change.job
