"""Workflows (ojs-workflows.md): chain, group and batch, as pure functions of a record.

The record keeps one letter per member (`w` waiting, `p` enqueued, `c` completed, `f` failed,
`x` cancelled), so even a 1,000-job batch stays a small document that every finished member can
update by compare-and-set; the member specs live in a separate document written once (`Specs`).
Results stay in the job records, except a chain's, which feed the next step's
`parent_results`. Member job ids are derived from (workflow, member), so enqueueing a member
twice is impossible. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model import envelope, ids

TYPES = ("chain", "group", "batch")
CALLBACKS = ("on_complete", "on_success", "on_failure")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
MAX_MEMBERS = 10_000

WAITING, ENQUEUED, COMPLETED, FAILED, CANCELLED = "w", "p", "c", "f", "x"
_ITEM_STATE = {
    WAITING: "waiting",
    ENQUEUED: "pending",
    COMPLETED: "completed",
    FAILED: "failed",
    CANCELLED: "cancelled",
}
#: Job state -> member letter, once the job is finished.
FINISHED_AS = {"completed": COMPLETED, "discarded": FAILED, "cancelled": CANCELLED}

Record = dict[str, Any]
#: {"specs": [job spec per member], "callbacks": {name: job spec}}, written once at creation.
Specs = dict[str, Any]


@dataclasses.dataclass(slots=True)
class Step:
    """What the service must do after a workflow change: jobs to enqueue, events to emit."""

    record: Record
    #: (member key, job spec, parent_results) of jobs to enqueue.
    enqueue: list[tuple[str, dict[str, Any], Any]]
    events: list[tuple[str, dict[str, Any]]]
    #: Member keys whose not-yet-started jobs must be cancelled.
    cancel: list[str] = dataclasses.field(default_factory=list)


def parse(body: object, now: int, workflow_id: str) -> tuple[Record, Specs]:
    """Validate a create request; returns the new record (state `running`) and its specs.

    Raises:
        InvalidRequestError: anything invalid, naming the path (400).
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("The workflow must be a JSON object.", field="body")
    kind = body.get("type")
    if kind not in TYPES:
        raise InvalidRequestError(
            "The workflow 'type' must be chain, group or batch.", field="type"
        )
    field = "steps" if kind == "chain" else "jobs"
    members = body.get(field)
    if not isinstance(members, list) or not members:
        raise InvalidRequestError(f"The '{field}' field must be a non-empty array.", field=field)
    if len(members) > MAX_MEMBERS:
        raise InvalidRequestError(f"At most {MAX_MEMBERS} {field} per workflow.", field=field)
    specs = [_spec(m, f"{field}[{i}]") for i, m in enumerate(members)]
    callbacks: dict[str, dict[str, Any]] = {}
    if kind == "batch":
        raw = body.get("callbacks")
        if not isinstance(raw, dict) or not any(raw.get(name) for name in CALLBACKS):
            raise InvalidRequestError(
                "A batch needs 'callbacks' with at least one of on_complete, on_success, "
                "on_failure.",
                field="callbacks",
            )
        unknown = set(raw) - set(CALLBACKS)
        if unknown:
            raise InvalidRequestError(f"Unknown callbacks: {sorted(unknown)}.", field="callbacks")
        callbacks = {name: _spec(spec, f"callbacks.{name}") for name, spec in raw.items() if spec}
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidRequestError("The workflow 'name' must be a string.", field="name")
    first = specs if kind != "chain" else specs[:1]
    record = {
        "id": workflow_id,
        "type": kind,
        "name": name,
        "state": "running",
        "created_at": ids.format_ts(now),
        "created_ms": now,
        "started_at": ids.format_ts(now),
        "callbacks": sorted(callbacks),
        "members": ENQUEUED * len(first) + WAITING * (len(specs) - len(first)),
        "fired": "",  # callbacks enqueued, by initial: c(omplete) s(uccess) f(ailure)
        "callback_states": {},
        "results": [],  # a chain's step results, in order
        "queue": specs[0]["options"].get("queue") or envelope.DEFAULT_QUEUE,  # of its events
    }
    return record, {"specs": specs, "callbacks": callbacks}


def member_job_id(namespace: str, record: Record, key: str) -> str:
    """Job id of member `key` (a step/job index, or a callback name)."""
    return ids.derived_uuid7(int(record["created_ms"]), namespace, "workflow", record["id"], key)


def initial_jobs(record: Record, specs: Specs) -> list[tuple[str, dict[str, Any], Any]]:
    """Jobs to enqueue when the workflow is created."""
    if record["type"] == "chain":
        return [("0", specs["specs"][0], [])]
    return [(str(i), spec, None) for i, spec in enumerate(specs["specs"])]


def pending_jobs(record: Record, specs: Specs) -> list[tuple[str, dict[str, Any], Any]]:
    """Every member that should exist as a job now (idempotent re-enqueue after a crash)."""
    jobs = [
        (str(i), spec, _parents(record, i))
        for i, spec in enumerate(specs["specs"])
        if record["members"][i] == ENQUEUED
    ]
    for name in _fired_names(record):
        jobs.append((name, specs["callbacks"][name], "all"))
    return jobs


def member_finished(
    record: Record, specs: Specs, key: str, job_state: str, result: Any, now: int
) -> Step | None:
    """A member's job finished; None if the workflow already knew (a repeated notification)."""
    if record["state"] in TERMINAL:
        return None
    rec = {
        **record,
        "members": record["members"],
        "results": list(record["results"]),
        "callback_states": dict(record["callback_states"]),
    }
    letter = FINISHED_AS.get(job_state)
    if letter is None:
        return None
    if key in CALLBACKS:
        return _callback_finished(rec, key, letter, now)
    index = int(key)
    if rec["members"][index] in (COMPLETED, FAILED, CANCELLED):
        return None
    rec["members"] = _set(rec["members"], index, letter)
    member_event = (
        ("workflow.step_completed" if letter == COMPLETED else "workflow.step_failed")
        if rec["type"] == "chain"
        else ("workflow.job_completed" if letter == COMPLETED else "workflow.job_failed")
    )
    step = Step(rec, [], [(member_event, {"index": index, "state": _ITEM_STATE[letter]})])
    if rec["type"] == "chain":
        _chain_advance(step, specs, index, letter, result, now)
    else:
        _parallel_advance(step, specs, now)
    return step


def members_finished(
    record: Record, specs: Specs, finished: list[tuple[str, str, Any]], now: int
) -> Step | None:
    """Several members finished, applied in order as (key, job state, result); None if the
    workflow already knew of all of them. Jobs the later members are already known to exist
    as are not enqueued again."""
    merged: Step | None = None
    for key, job_state, result in finished:
        current = merged.record if merged else record
        step = member_finished(current, specs, key, job_state, result, now)
        if step is None:
            continue
        if merged is None:
            merged = step
        else:
            merged.record = step.record
            merged.enqueue += step.enqueue
            merged.events += step.events
            merged.cancel += step.cancel
    if merged is not None:
        known = {key for key, _, _ in finished}
        merged.enqueue = [item for item in merged.enqueue if item[0] not in known]
    return merged


def unrecorded_steps(record: Record, key: str) -> list[str]:
    """Chain steps before step `key` still marked enqueued although `key` exists: a gateway
    died between enqueueing the next step and recording its own. Each completed, or the
    next step would not exist, so they must be recorded before `key` (results in order)."""
    if record["type"] != "chain" or key in CALLBACKS:
        return []
    return [str(i) for i, letter in enumerate(record["members"][: int(key)]) if letter == ENQUEUED]


def cancel(record: Record, now: int) -> Step:
    """Cancel the workflow: nothing more is enqueued; jobs not yet started are cancelled."""
    rec = dict(record)
    rec["state"] = "cancelled"
    rec["cancelled_at"] = rec["completed_at"] = ids.format_ts(now)
    members = rec["members"]
    cancel_keys = [str(i) for i, letter in enumerate(members) if letter == ENQUEUED]
    cancel_keys += [name for name in _fired_names(rec) if rec["callback_states"].get(name) is None]
    rec["members"] = "".join(CANCELLED if letter == WAITING else letter for letter in members)
    return Step(rec, [], [("workflow.cancelled", {})], cancel_keys)


def to_wire(
    record: Record, specs: Specs | None = None, job_ids: dict[str, str] | None = None
) -> dict[str, Any]:
    """The workflow as the API shows it (both the suites' and the spec's field names); member
    details need the specs."""
    members = record["members"]
    completed = members.count(COMPLETED)
    failed = members.count(FAILED) + members.count(CANCELLED)
    total = len(members)
    member_specs = (specs or {}).get("specs") or [{}] * total
    items = [
        {
            "index": i,
            "type": spec.get("type"),
            "state": _ITEM_STATE[members[i]],
            "job_id": (job_ids or {}).get(str(i)) if members[i] != WAITING else None,
        }
        for i, spec in enumerate(member_specs)
    ]
    wire: dict[str, Any] = {
        "id": record["id"],
        "type": record["type"],
        "name": record.get("name"),
        "state": record["state"],
        "steps_total": total,
        "steps_completed": completed,
        "jobs_total": total,
        "jobs_completed": completed,
        "jobs_failed": failed,
        "created_at": record["created_at"],
        "started_at": record.get("started_at"),
        "completed_at": record.get("completed_at"),
        "metadata": {
            "created_at": record["created_at"],
            "started_at": record.get("started_at"),
            "completed_at": record.get("completed_at"),
            "job_count": total,
            "completed_count": completed,
            "failed_count": failed,
        },
    }
    wire["steps" if record["type"] == "chain" else "jobs"] = items
    if record.get("cancelled_at"):
        wire["cancelled_at"] = record["cancelled_at"]
    if record["type"] == "chain" and FAILED in members:
        wire["failed_step_index"] = members.index(FAILED)
    if record["callbacks"]:
        fired = set(_fired_names(record))
        callback_specs = (specs or {}).get("callbacks") or {}
        wire["callbacks"] = {
            name: {
                "type": callback_specs.get(name, {}).get("type"),
                "fired": name in fired,
                "state": record["callback_states"].get(
                    name, "pending" if name in fired else "not_fired"
                ),
                "job_id": (job_ids or {}).get(name) if name in fired else None,
            }
            for name in record["callbacks"]
        }
    return wire


def _spec(raw: object, path: str) -> dict[str, Any]:
    """A member job spec, validated as the job it will become."""
    if not isinstance(raw, dict):
        raise InvalidRequestError(f"{path} must be a job object.", field=path)
    if raw.get("type") in TYPES and ("steps" in raw or "jobs" in raw):
        raise InvalidRequestError(f"{path}: nested workflows are not supported.", field=path)
    spec = {
        "type": raw.get("type"),
        "args": raw.get("args", []),
        "options": raw.get("options") or {},
    }
    if raw.get("meta") is not None:
        spec["meta"] = raw["meta"]
    try:
        envelope.parse_submission(spec, 0)
    except InvalidRequestError as exc:
        raise InvalidRequestError(
            f"{path}: {exc.message}", field=path, problem=exc.details
        ) from exc
    return spec


def _set(members: str, index: int, letter: str) -> str:
    return members[:index] + letter + members[index + 1 :]


def _parents(record: Record, index: int) -> Any:
    return list(record["results"][:index]) if record["type"] == "chain" else None


def _chain_advance(
    step: Step, specs: Specs, index: int, letter: str, result: Any, now: int
) -> None:
    rec = step.record
    if letter != COMPLETED:
        rec["members"] = rec["members"][: index + 1] + CANCELLED * (len(rec["members"]) - index - 1)
        _finish(step, "failed", now, failed_step_index=index)
        return
    rec["results"] = [*rec["results"], result]
    following = index + 1
    if following == len(rec["members"]):
        _finish(step, "completed", now)
        return
    rec["members"] = _set(rec["members"], following, ENQUEUED)
    step.enqueue.append((str(following), specs["specs"][following], list(rec["results"])))


def _parallel_advance(step: Step, specs: Specs, now: int) -> None:
    rec = step.record
    members = rec["members"]
    if WAITING in members or ENQUEUED in members:
        return
    any_failed = FAILED in members or CANCELLED in members
    if rec["type"] == "group" or not rec["callbacks"]:
        _finish(step, "failed" if any_failed else "completed", now)
        return
    wanted = [
        name
        for name in CALLBACKS
        if name in rec["callbacks"]
        and (name == "on_complete" or (name == "on_failure") == any_failed)
    ]
    rec["fired"] = "".join(name[3] for name in wanted)
    for name in wanted:
        step.enqueue.append((name, specs["callbacks"][name], "all"))
        step.events.append(("workflow.callback_fired", {"callback": name}))
    if not wanted:
        _finish(step, "failed" if any_failed else "completed", now)


def _callback_finished(rec: Record, name: str, letter: str, now: int) -> Step | None:
    if rec["callback_states"].get(name) is not None or name not in _fired_names(rec):
        return None
    rec["callback_states"][name] = _ITEM_STATE[letter]
    step = Step(rec, [], [])
    if all(rec["callback_states"].get(n) for n in _fired_names(rec)):
        # A batch fails only through a failed callback (ojs-workflows.md §8.3): its members'
        # failures were handled by on_failure.
        failed = any(state != "completed" for state in rec["callback_states"].values())
        _finish(step, "failed" if failed else "completed", now)
    return step


def _fired_names(record: Record) -> list[str]:
    return [name for name in CALLBACKS if name[3] in record.get("fired", "")]


def _finish(step: Step, state: str, now: int, **data: Any) -> None:
    step.record["state"] = state
    step.record["completed_at"] = ids.format_ts(now)
    step.events.append((f"workflow.{state}", data))
