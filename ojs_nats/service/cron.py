"""Cron jobs (ojs-cron.md): registration, listing, removal, and what each tick does.

No leader: every tick of every cron is its own durable timer (`cron.<name>.<tick ms>`), armed a
few ticks ahead; the shared consumer hands each fired tick to exactly one gateway. A tick
enqueues a job whose id is derived from (cron, tick), so a tick handled twice (a gateway died
mid-way and the tick was redelivered) creates the job once. Write order per tick: the job, the
next ticks' timers, then the cron record by compare-and-set; the fired timer is acked last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ojs_nats.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    SchemaValidationError,
)
from ojs_nats.model import cron as schedules
from ojs_nats.model import envelope, ids
from ojs_nats.model import job as jobs
from ojs_nats.model.lifecycle import TERMINAL, State
from ojs_nats.service import push, schemas
from ojs_nats.service.apply import commit, event_at, transition
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer, RevisionConflict, Stored

log = logging.getLogger(__name__)

TIMER_KIND = "cron"
#: Ticks are armed this far ahead (at least the next one), so a tick whose gateway dies
#: while handling it delays only that tick, never the ones after it.
LOOKAHEAD_MS = 5_000
MAX_ARMED_AHEAD = 10
#: A tick handled this late was missed (no gateway was running): longer than a fired timer
#: held by a dead gateway takes to be redelivered (provision.TIMER_REDELIVERY_S).
MISSED_AFTER_MS = 20_000
STALE_GRACE_MS = 30_000
MAX_CAS_ATTEMPTS = 8


# ---------------------------------------------------------------- registration


async def register(ctx: Context, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create or replace a cron job (upsert, ojs-cron.md §8.1); returns (cron, created)."""
    definition = _definition(body)
    schedule = schedules.parse_schedule(definition["expression"], definition["timezone"])
    # The template's args must fit their registered schema now, not fail at every tick.
    template = definition["job_template"]
    schemas.check(await schemas.catalog(ctx), envelope.parse_submission(template, ctx.clock()))
    name = definition["name"]
    for _ in range(MAX_CAS_ATTEMPTS):
        now = ctx.clock()
        existing = await ctx.storage.cron.get(name)
        record = {
            **definition,
            "generation": (existing.record["generation"] + 1) if existing else 1,
            "created_at": existing.record["created_at"] if existing else ids.format_ts(now),
            "updated_at": ids.format_ts(now),
            "anchor_ms": now,
            "armed_until_ms": None,
            "last_tick_ms": None,
            "last_run_at": existing.record.get("last_run_at") if existing else None,
            "last_job_id": existing.record.get("last_job_id") if existing else None,
            "run_count": existing.record.get("run_count", 0) if existing else 0,
        }
        if record["enabled"]:
            record["armed_until_ms"] = await _arm_ahead(ctx, record, schedule, now, now)
        try:
            await ctx.storage.cron.put(name, record, existing.revision if existing else 0)
        except RevisionConflict:
            continue
        return to_wire(record, schedule, now), existing is None
    raise ConflictError(f"Cron job '{name}' is being changed concurrently; retry.")


async def get(ctx: Context, name: str) -> dict[str, Any]:
    stored = await _stored(ctx, name)
    record = stored.record
    return to_wire(record, _schedule_of(record), ctx.clock())


async def list_all(ctx: Context, enabled: bool | None = None) -> list[dict[str, Any]]:
    now = ctx.clock()
    records = await ctx.storage.cron.all()
    return [
        to_wire(r, _schedule_of(r), now)
        for r in sorted(records, key=lambda r: r["name"])
        if enabled is None or r["enabled"] is enabled
    ]


async def remove(ctx: Context, name: str) -> dict[str, Any]:
    """Delete the registration, then its pending ticks (a leftover tick finds no record)."""
    stored = await _stored(ctx, name)
    await ctx.storage.cron.delete(name)
    await ctx.storage.timers.disarm_all(TIMER_KIND, name)
    return to_wire(stored.record, _schedule_of(stored.record), ctx.clock())


async def toggle(ctx: Context, name: str, enabled: bool) -> dict[str, Any]:
    """Enable or disable without unregistering (ojs-cron.md §8.5)."""
    for _ in range(MAX_CAS_ATTEMPTS):
        stored = await _stored(ctx, name)
        now = ctx.clock()
        record = {
            **stored.record,
            "enabled": enabled,
            "updated_at": ids.format_ts(now),
            "generation": stored.record["generation"] + 1,
            "armed_until_ms": None,
        }
        schedule = _schedule_of(record)
        if enabled:
            record["anchor_ms"] = now
            record["armed_until_ms"] = await _arm_ahead(ctx, record, schedule, now, now)
        try:
            await ctx.storage.cron.put(name, record, stored.revision)
        except RevisionConflict:
            continue
        if not enabled:
            await ctx.storage.timers.disarm_all(TIMER_KIND, name)
        return to_wire(record, schedule, now)
    raise ConflictError(f"Cron job '{name}' is being changed concurrently; retry.")


def to_wire(record: dict[str, Any], schedule: schedules.Schedule, now: int) -> dict[str, Any]:
    template = record["job_template"]
    next_run = None
    if record["enabled"]:
        with_anchor = int(record.get("anchor_ms") or 0)
        next_run = ids.format_ts(schedule.next_after(now, with_anchor))
    return {
        "name": record["name"],
        "expression": record["expression"],
        "cron": record["expression"],
        "timezone": record["timezone"],
        "overlap_policy": record["overlap_policy"],
        "enabled": record["enabled"],
        "description": record.get("description"),
        "job_template": template,
        "type": template["type"],
        "args": template["args"],
        "options": template["options"],
        "last_run_at": record.get("last_run_at"),
        "next_run_at": next_run,
        "run_count": record.get("run_count", 0),
        "last_job_id": record.get("last_job_id"),
        "created_at": record["created_at"],
        "updated_at": record.get("updated_at"),
    }


def _definition(body: dict[str, Any]) -> dict[str, Any]:
    """The client's fields, accepting both the cron spec's and the suites' spellings."""
    name = schedules.validate_name(body.get("name"))
    expression = body.get("expression", body.get("cron"))
    template = body.get("job_template")
    if template is None:
        template = {
            "type": body.get("type"),
            "args": body.get("args", []),
            "options": body.get("options") or {},
        }
    if not isinstance(template, dict):
        raise InvalidRequestError(
            "The 'job_template' field must be an object.", field="job_template"
        )
    template = {
        "type": template.get("type"),
        "args": template.get("args", []),
        "options": template.get("options") or {},
        "meta": template.get("meta"),
    }
    # Validate the template as the job it will become (fails fast, ojs-cron.md §2.2).
    envelope.parse_submission({k: v for k, v in template.items() if v is not None}, 0)
    if template["meta"] is None:
        del template["meta"]
    overlap = body.get("overlap_policy", "skip")
    if overlap not in schedules.OVERLAP_POLICIES:
        raise InvalidRequestError(
            "overlap_policy must be one of " + ", ".join(schedules.OVERLAP_POLICIES) + ".",
            field="overlap_policy",
        )
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidRequestError("The 'enabled' field must be a boolean.", field="enabled")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequestError("The 'description' field must be a string.", field="description")
    return {
        "name": name,
        "expression": expression,
        "timezone": body.get("timezone") or "UTC",
        "overlap_policy": overlap,
        "enabled": enabled,
        "description": description,
        "job_template": template,
    }


async def _stored(ctx: Context, name: str) -> Stored:
    stored = await ctx.storage.cron.get(schedules.validate_name(name))
    if stored is None:
        raise NotFoundError(f"Cron job '{name}' not found.", resource_type="cron", resource_id=name)
    return stored


def _schedule_of(record: dict[str, Any]) -> schedules.Schedule:
    return schedules.parse_schedule(record["expression"], record["timezone"])


async def _arm_ahead(
    ctx: Context, record: dict[str, Any], schedule: schedules.Schedule, after_ms: int, now: int
) -> int:
    """Arm the ticks after `after_ms` up to LOOKAHEAD_MS from now (at least one)."""
    anchor = int(record.get("anchor_ms") or now)
    ticks: list[int] = []
    tick = after_ms
    while len(ticks) < MAX_ARMED_AHEAD:
        tick = schedule.next_after(tick, anchor)
        ticks.append(tick)
        if tick > now + LOOKAHEAD_MS:
            break
    payload = {"generation": record["generation"]}
    await asyncio.gather(
        *(ctx.storage.timers.arm(TIMER_KIND, f"{record['name']}.{t}", t, payload) for t in ticks)
    )
    return ticks[-1]


# ---------------------------------------------------------------- ticks


async def on_tick(ctx: Context, timer: FiredTimer) -> None:
    """Handle one fired tick; acked only once its job exists and the cron moved on."""
    name, _, tick_text = timer.key.rpartition(".")
    tick = int(tick_text)
    generation = int(timer.data.get("generation", 0))
    stored = await ctx.storage.cron.get(name)
    now = ctx.clock()
    if stored is None or not stored.record["enabled"]:
        await ctx.storage.timers.done(timer)  # deleted or disabled meanwhile
        return
    if stored.record["generation"] != generation:
        await _stale(ctx, timer, stored, generation)
        return
    record = stored.record
    schedule = _schedule_of(record)
    job_id = schedules.tick_job_id(ctx.settings.namespace, name, tick)
    if await ctx.storage.jobs.get(job_id) is None:
        if _missed(record, schedule, tick, now):
            await _emit(ctx, record, "cron.skipped", tick, reason="missed")
        else:
            await _fire(ctx, record, tick, job_id)
    await _advance(ctx, name, tick, job_id, schedule)
    await ctx.storage.timers.done(timer)


async def _stale(ctx: Context, timer: FiredTimer, stored: Stored, generation: int) -> None:
    """A tick of another generation. Older: superseded, drop it. Newer: the update that armed it
    is in flight (wait) or died before writing the record (re-arm the record's own ticks)."""
    if generation < stored.record["generation"]:
        await ctx.storage.timers.done(timer)
        return
    if timer.age_ms < STALE_GRACE_MS:
        await ctx.storage.timers.again_in(timer, 200)
        return
    record = stored.record
    now = ctx.clock()
    await _arm_ahead(ctx, record, _schedule_of(record), now, now)
    await ctx.storage.timers.done(timer)


def _missed(record: dict[str, Any], schedule: schedules.Schedule, tick: int, now: int) -> bool:
    """True for a tick that fired while no gateway ran, when a later armed tick is due too:
    of the ticks missed during an outage only the latest catches up (ojs-cron.md §7.3).

    A tick held by a gateway that died is redelivered within TIMER_REDELIVERY_S, well under
    MISSED_AFTER_MS, so it still fires: late, but exactly once.
    """
    if now - tick < MISSED_AFTER_MS:
        return False
    following = schedule.next_after(tick, int(record.get("anchor_ms") or 0))
    return following <= now and following <= int(record.get("armed_until_ms") or 0)


async def _fire(ctx: Context, record: dict[str, Any], tick: int, job_id: str) -> None:
    """Enqueue the tick's job, honouring the overlap policy against the last job."""
    policy = record["overlap_policy"]
    previous = await _running(ctx, record.get("last_job_id"))
    pending = False
    if previous is not None and policy == "skip":
        await _emit(
            ctx, record, "cron.skipped", tick, reason="overlap_skip", existing_job_id=previous
        )
        return
    if previous is not None and policy == "cancel_previous":
        with contextlib.suppress(ConflictError, NotFoundError):  # it finished meanwhile
            await transition(ctx, previous, jobs.cancel)
    if previous is not None and policy == "enqueue":
        pending = True  # runs once the previous one finishes (a follower of it)
    now = ctx.clock()
    template = record["job_template"]
    body: dict[str, Any] = {
        "id": job_id,
        "type": template["type"],
        "args": template["args"],
        "meta": {
            **(template.get("meta") or {}),
            "cron_name": record["name"],
            "cron_triggered_at": ids.format_ts(tick),
        },
        "options": {**template["options"], "pending": pending},
    }
    submission = envelope.parse_submission(body, now)
    try:  # a schema registered after the cron can still refuse its args
        schemas.check(await schemas.catalog(ctx), submission)
    except SchemaValidationError as exc:
        await _emit(
            ctx, record, "cron.skipped", tick, reason="schema_validation", error=exc.message
        )
        return
    if await push.create(ctx, submission, now) is None:
        return  # this tick's job exists already
    if pending and previous is not None and not await _follow(ctx, previous, job_id):
        await transition(ctx, job_id, jobs.activate)  # the previous one finished meanwhile
    await _emit(
        ctx,
        record,
        "cron.triggered",
        tick,
        job_id=job_id,
        job_type=template["type"],
        queue=submission.queue,
    )


async def _running(ctx: Context, job_id: object) -> str | None:
    """`job_id` if that job has not finished (any non-terminal state counts as running)."""
    if not isinstance(job_id, str):
        return None
    stored = await ctx.storage.jobs.get(job_id)
    if stored is None or State(stored.record["job"]["state"]) in TERMINAL:
        return None
    return job_id


async def _follow(ctx: Context, previous: str, waiting: str) -> bool:
    """Make `waiting` run when `previous` finishes; False if `previous` already finished."""
    for _ in range(MAX_CAS_ATTEMPTS):
        stored = await ctx.storage.jobs.get(previous)
        if stored is None:
            return False
        change = jobs.add_follower(stored.record, {"activate": waiting})
        if change is None:
            return False
        try:
            await commit(ctx, change, stored)
        except RevisionConflict:
            continue
        return True
    return False


async def _advance(
    ctx: Context, name: str, tick: int, job_id: str, schedule: schedules.Schedule
) -> None:
    """Record the tick and keep the next ticks armed (compare-and-set, retried)."""
    for _ in range(MAX_CAS_ATTEMPTS):
        stored = await ctx.storage.cron.get(name)
        if stored is None:
            return
        record = dict(stored.record)
        now = ctx.clock()
        if record.get("last_tick_ms") is None or tick > record["last_tick_ms"]:
            record["last_tick_ms"] = tick
            # Only a tick that enqueued its job is a run (ojs-cron.md §2.3: `last_run_at` and
            # `run_count` count triggers; skipped or missed ticks are not triggers).
            if await ctx.storage.jobs.get(job_id) is not None:
                record["last_job_id"] = job_id
                record["last_run_at"] = ids.format_ts(tick)
                record["run_count"] = int(record.get("run_count", 0)) + 1
        armed = int(record.get("armed_until_ms") or 0)
        if record["enabled"] and armed < now + LOOKAHEAD_MS:
            record["armed_until_ms"] = await _arm_ahead(ctx, record, schedule, max(armed, now), now)
        if record == stored.record:
            return
        try:
            await ctx.storage.cron.put(name, record, stored.revision)
        except RevisionConflict:
            continue
        return


async def _emit(ctx: Context, record: dict[str, Any], kind: str, tick: int, **data: Any) -> None:
    queue = str(record["job_template"]["options"].get("queue") or envelope.DEFAULT_QUEUE)
    event = event_at(
        ctx,
        kind,
        record["name"],
        {
            "cron_name": record["name"],
            "cron_expression": record["expression"],
            # ojs-events.md §4 names these `cron_expr`, `job_type` and (for cron.triggered)
            # `scheduled_at`; ojs-cron.md §9 the two above: both spellings are sent.
            "cron_expr": record["expression"],
            "job_type": record["job_template"]["type"],
            "timezone": record["timezone"],
            "scheduled_time": ids.format_ts(tick),
            "scheduled_at": ids.format_ts(tick),
            "actual_time": ids.format_ts(ctx.clock()),
            "queue": queue,
            **data,
        },
    )
    await ctx.storage.events.append(queue, event)
