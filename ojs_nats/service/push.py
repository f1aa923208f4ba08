"""PUSH: validate an enqueue request and store the job (ojs-http-binding.md §9.1)."""

from __future__ import annotations

from typing import Any

from ojs_nats.errors import DuplicateError
from ojs_nats.model import envelope, ids
from ojs_nats.model import job as jobs
from ojs_nats.model.envelope import Submission
from ojs_nats.service.apply import commit
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict


async def push(ctx: Context, body: object) -> dict[str, Any]:
    """Store one job; returns the wire job. 201 is only returned after JetStream acked it."""
    now = ctx.clock()
    submission = envelope.parse_submission(body, now)
    job = await create(ctx, submission, now)
    if job is None:
        raise DuplicateError(
            f"A job with id '{submission.id}' already exists.", existing_job_id=submission.id
        )
    return job


async def create(ctx: Context, submission: Submission, now: int) -> dict[str, Any] | None:
    """Store a validated job; None if a job with its id exists already."""
    change = jobs.new_record(submission, now)
    await ctx.storage.queues.register(submission.queue, ids.format_ts(now))
    try:
        await commit(ctx, change, None)
    except RevisionConflict:
        return None
    return change.job
