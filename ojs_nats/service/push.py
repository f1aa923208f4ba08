"""PUSH: validate an enqueue request and store the job (ojs-http-binding.md §9.1). Order:
validate (the envelope, then the args against their registered schema), the queue's depth
bound, the uniqueness key (may answer with the existing job), drop the oldest jobs if the bound
says so, then the job's own writes (`apply.commit`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ojs_nats.errors import DuplicateError
from ojs_nats.model import envelope, ids
from ojs_nats.model import job as jobs
from ojs_nats.model.envelope import Submission
from ojs_nats.service import backpressure, queue_config, schemas, unique
from ojs_nats.service.apply import commit
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict


@dataclasses.dataclass(frozen=True, slots=True)
class Pushed:
    job: dict[str, Any]
    #: False when a unique job's `ignore` policy answered with the existing job.
    created: bool = True
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


async def push(ctx: Context, body: object, block_timeout_s: float = 0.0) -> Pushed:
    """Store one job. 201 is only returned after JetStream acked it."""
    now = ctx.clock()
    submission = envelope.parse_submission(body, now, queue_retry=queue_config.default_retry(ctx))
    unique.key_of(submission)  # validates args_keys before anything is written
    schemas.check(await schemas.catalog(ctx), submission)
    room = await backpressure.make_room(ctx, submission.queue, 1, block_timeout_s)
    admission = await unique.admit(ctx, submission, now)
    if admission.existing is not None:
        return Pushed(admission.existing, created=False)
    submission = admission.submission
    change = jobs.new_record(submission, now)
    if admission.lock is not None:
        change.record["sys"]["unique"] = admission.lock
    try:
        if room.drop:
            await backpressure.drop_oldest(ctx, submission.queue, room.drop)
        await ctx.storage.queues.register(submission.queue, ids.format_ts(now))
    except Exception:
        await unique.release(ctx, admission.lock)
        raise
    try:
        await commit(ctx, change, None)
    except RevisionConflict as exc:
        # The id is taken, so our record was not written: the key goes back. (After any other
        # failure the record may exist; the lock then stays and lapses if it does not.)
        await unique.release(ctx, admission.lock)
        raise DuplicateError(
            f"A job with id '{submission.id}' already exists.", existing_job_id=submission.id
        ) from exc
    return Pushed(change.job, headers=room.headers())


async def create(
    ctx: Context,
    submission: Submission,
    now: int,
    extra: dict[str, Any] | None = None,
    followers: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Store a job the server itself enqueues (a cron tick, a workflow member); None if a job
    with its id exists already. Such jobs skip admission (uniqueness, the depth bound): the
    cron or workflow that makes them has already decided they must exist.

    Args:
        extra: system fields to set on the wire job (e.g. `workflow_id`, `parent_results`).
        followers: actions to run when the job finishes (see service/finish.py).
    """
    change = jobs.new_record(submission, now)
    if extra:
        change.record["job"].update(extra)
    if followers:
        change.record["sys"]["on_finish"] = list(followers)
    await ctx.storage.queues.register(submission.queue, ids.format_ts(now))
    try:
        await commit(ctx, change, None)
    except RevisionConflict:
        return None
    return change.job
