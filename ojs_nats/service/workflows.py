"""Workflows: create, read and cancel chains, groups and batches, and advance them.

Every member job carries a `workflow` follower (see service/finish.py): when it finishes, the
`finished` timer calls `on_member_finished`, which enqueues what comes next (derived job ids, so
never twice) and only then advances the workflow record by compare-and-set. Creation and
cancellation are covered by a `workflow` repair timer armed first and disarmed last: if the
gateway dies in between, the timer finishes the job (creates the missing members, or cancels
the ones not started).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ojs_nats.errors import ConflictError, NotFoundError
from ojs_nats.model import envelope, ids
from ojs_nats.model import job as jobs
from ojs_nats.model import workflow as wf
from ojs_nats.model.lifecycle import State
from ojs_nats.service import push, schemas
from ojs_nats.service.apply import event_at, transition
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer, RevisionConflict, Stored

REPAIR_KIND = "workflow"
#: When a create or cancel that did not finish is completed by the repair timer.
REPAIR_AFTER_MS = 10_000
MAX_CAS_ATTEMPTS = 16
_UNSTARTED = frozenset({State.AVAILABLE, State.SCHEDULED, State.PENDING, State.RETRYABLE})


async def create(ctx: Context, body: object) -> dict[str, Any]:
    now = ctx.clock()
    workflow_id = ids.uuid7(now)
    record, specs = wf.parse(body, now, workflow_id)
    known = await schemas.catalog(ctx)
    for spec in [*specs["specs"], *specs["callbacks"].values()]:
        schemas.check(known, envelope.parse_submission(spec, now))
    await ctx.storage.timers.arm(REPAIR_KIND, workflow_id, now + REPAIR_AFTER_MS)
    await ctx.storage.workflows.put_specs(workflow_id, specs)
    await ctx.storage.workflows.put(workflow_id, record, 0)
    await _enqueue(ctx, record, wf.initial_jobs(record, specs))
    await _emit(
        ctx,
        record,
        [("workflow.created", {}), ("workflow.started", {"total_steps": len(record["members"])})],
    )
    await ctx.storage.timers.disarm(REPAIR_KIND, workflow_id)
    return wf.to_wire(record, specs, _job_ids(ctx, record))


async def get(ctx: Context, workflow_id: str) -> dict[str, Any]:
    stored = await _stored(ctx, workflow_id)
    specs = await ctx.storage.workflows.get_specs(workflow_id)
    return wf.to_wire(stored.record, specs, _job_ids(ctx, stored.record))


async def cancel(ctx: Context, workflow_id: str) -> dict[str, Any]:
    """Cancel: jobs not yet started are cancelled, running ones may finish (§11.3)."""
    for _ in range(MAX_CAS_ATTEMPTS):
        stored = await _stored(ctx, workflow_id)
        if stored.record["state"] in wf.TERMINAL:
            raise ConflictError(
                f"Workflow {workflow_id} is already in terminal state '{stored.record['state']}'.",
                workflow_id=workflow_id,
                current_state=stored.record["state"],
            )
        step = wf.cancel(stored.record, ctx.clock())
        await ctx.storage.timers.arm(REPAIR_KIND, workflow_id, ctx.clock() + REPAIR_AFTER_MS)
        try:
            await ctx.storage.workflows.put(
                workflow_id, step.record, stored.revision, _retention(ctx)
            )
        except RevisionConflict:
            continue
        await _cancel_members(ctx, step.record, step.cancel)
        await _emit(ctx, step.record, step.events)
        specs = await _finish_specs(ctx, workflow_id)
        await ctx.storage.timers.disarm(REPAIR_KIND, workflow_id)
        return wf.to_wire(step.record, specs, _job_ids(ctx, step.record))
    raise ConflictError(f"Workflow {workflow_id} is changing concurrently; retry.")


async def on_member_finished(
    ctx: Context, workflow_id: str, member: str, job_record: jobs.Record
) -> None:
    """A member job reached a terminal state: enqueue what follows, then record it."""
    job = job_record["job"]
    specs = await ctx.storage.workflows.get_specs(workflow_id)
    enqueued: list[str] = []
    for _ in range(MAX_CAS_ATTEMPTS):
        stored = await ctx.storage.workflows.get(workflow_id)
        if stored is None or specs is None:
            return  # expired or never written: nothing to advance
        finished = await _unrecorded(ctx, stored.record, member)
        finished.append((member, job["state"], job.get("result")))
        step = wf.members_finished(stored.record, specs, finished, ctx.clock())
        if step is None:
            if enqueued and stored.record["state"] == "cancelled":
                # Cancelled between our read and our write: take back what we enqueued.
                await _cancel_members(ctx, stored.record, enqueued)
            return  # already recorded (a repeated notification) or workflow finished
        await _enqueue(ctx, step.record, step.enqueue)
        enqueued += [key for key, _, _ in step.enqueue]
        done = step.record["state"] in wf.TERMINAL
        try:
            await ctx.storage.workflows.put(
                workflow_id, step.record, stored.revision, _retention(ctx) if done else None
            )
        except RevisionConflict:
            continue
        await _emit(ctx, step.record, step.events)
        if done:
            await _finish_specs(ctx, workflow_id)
        return
    raise ConflictError(f"Workflow {workflow_id} is changing concurrently.")


async def _unrecorded(ctx: Context, record: wf.Record, member: str) -> list[tuple[str, str, Any]]:
    """Earlier chain steps whose own recording was lost in a crash, as they finished."""
    keys = wf.unrecorded_steps(record, member)
    stored = await asyncio.gather(
        *(ctx.storage.jobs.get(wf.member_job_id(ctx.settings.namespace, record, k)) for k in keys)
    )
    # A record already gone (retention) completed all the same; only its result is lost.
    return [
        (key, s.record["job"]["state"], s.record["job"].get("result"))
        if s
        else (key, "completed", None)
        for key, s in zip(keys, stored, strict=True)
    ]


async def on_repair(ctx: Context, timer: FiredTimer) -> None:
    """Finish a create or cancel whose gateway died: idempotent, like every workflow write."""
    stored = await ctx.storage.workflows.get(timer.key)
    if stored is not None:
        record = stored.record
        if record["state"] == "cancelled":
            keys = [
                str(i)
                for i, letter in enumerate(record["members"])
                if letter in (wf.ENQUEUED, wf.CANCELLED)
            ]
            await _cancel_members(ctx, record, keys)
        elif record["state"] == "running":
            specs = await ctx.storage.workflows.get_specs(timer.key)
            if specs is not None:
                await _enqueue(ctx, record, wf.pending_jobs(record, specs))
    await ctx.storage.timers.done(timer)


async def _enqueue(
    ctx: Context, record: wf.Record, members: list[tuple[str, dict[str, Any], Any]]
) -> None:
    """Create member jobs in order; an existing one (same derived id) is left as it is."""
    if not members:
        return
    now = ctx.clock()
    prepared = []
    for key, spec, parents in members:
        body = {
            **spec,
            "id": wf.member_job_id(ctx.settings.namespace, record, key),
            "meta": {**(spec.get("meta") or {}), "workflow_id": record["id"]},
        }
        submission = envelope.parse_submission(body, now)
        await ctx.storage.queues.register(submission.queue, ids.format_ts(now))
        if parents == "all":
            parents = await _all_results(ctx, record)
        extra = {"workflow_id": record["id"]}
        if parents is not None:
            extra["parent_results"] = parents
        prepared.append((submission, extra, {"workflow": record["id"], "member": key}))
    # With queues registered and consumers in place, nothing is awaited before each create
    # publishes its ready entry, so the entries keep member order (FIFO within a queue).
    for submission, _, _ in prepared:
        await ctx.storage.ready.ensure_consumer(submission.queue, submission.job["priority"])
    await asyncio.gather(
        *(
            push.create(ctx, submission, now, extra, [follower])
            for submission, extra, follower in prepared
        )
    )


async def _all_results(ctx: Context, record: wf.Record) -> list[Any]:
    stored = await asyncio.gather(
        *(
            ctx.storage.jobs.get(wf.member_job_id(ctx.settings.namespace, record, str(i)))
            for i in range(len(record["members"]))
        )
    )
    return [s.record["job"].get("result") if s else None for s in stored]


async def _cancel_members(ctx: Context, record: wf.Record, keys: list[str]) -> None:
    def cancel_unstarted(job_record: jobs.Record, now: int) -> jobs.Change:
        if State(job_record["job"]["state"]) not in _UNSTARTED:
            raise ConflictError("already started")  # running members may finish
        return jobs.cancel(job_record, now)

    async def one(key: str) -> None:
        with contextlib.suppress(ConflictError, NotFoundError):
            await transition(
                ctx, wf.member_job_id(ctx.settings.namespace, record, key), cancel_unstarted
            )

    await asyncio.gather(*(one(key) for key in keys))


async def _finish_specs(ctx: Context, workflow_id: str) -> wf.Specs | None:
    """Give the specs of a finished workflow the same retention as its record."""
    specs = await ctx.storage.workflows.get_specs(workflow_id)
    if specs is not None:
        await ctx.storage.workflows.put_specs(workflow_id, specs, _retention(ctx))
    return specs


def _job_ids(ctx: Context, record: wf.Record) -> dict[str, str]:
    keys = [str(i) for i in range(len(record["members"]))] + list(record["callbacks"])
    return {key: wf.member_job_id(ctx.settings.namespace, record, key) for key in keys}


async def _stored(ctx: Context, workflow_id: str) -> Stored:
    stored = None
    if ids.is_uuid7(workflow_id):
        stored = await ctx.storage.workflows.get(workflow_id)
    if stored is None:
        raise NotFoundError(
            f"Workflow {workflow_id[:64]} not found.",
            resource_type="workflow",
            resource_id=workflow_id[:64],
        )
    return stored


def _retention(ctx: Context) -> int | None:
    return ctx.settings.finished_retention_s or None


async def _emit(ctx: Context, record: wf.Record, events: list[tuple[str, dict[str, Any]]]) -> None:
    queue = str(record.get("queue") or envelope.DEFAULT_QUEUE)
    common = {
        "workflow_id": record["id"],
        "workflow_name": record.get("name"),
        "workflow_type": record["type"],
        "queue": queue,
    }
    await asyncio.gather(
        *(
            ctx.storage.events.append(queue, event_at(ctx, kind, record["id"], {**common, **data}))
            for kind, data in events
        )
    )
