"""JobContext: the job's fields, its timeout, and the calls back to the worker."""

import asyncio

import pytest

from ojs_nats.worker import JobContext


async def make(job, beats=None, reports=None) -> JobContext:
    return JobContext(job, "w1", asyncio.get_running_loop(),
                      lambda: beats.append(1) if beats is not None else None,
                      lambda job_id, report: reports.append((job_id, report))
                      if reports is not None else None)


async def test_fields_of_the_job():
    ctx = await make({"id": "j1", "type": "a.b", "queue": "q", "args": [1], "meta": {"k": "v"},
                      "attempt": 2})
    assert (ctx.id, ctx.type, ctx.queue, ctx.args, ctx.meta, ctx.attempt) == (
        "j1", "a.b", "q", [1], {"k": "v"}, 2)


@pytest.mark.parametrize(("job", "expected"), [
    ({}, None), ({"timeout_ms": 1500}, 1.5), ({"timeout": 3}, 3.0), ({"timeout_ms": 0}, None),
])
async def test_timeout_comes_from_timeout_ms_or_seconds(job, expected):
    assert (await make({"id": "j", **job})).timeout_s == expected


async def test_progress_is_clamped_and_handed_to_the_worker_loop():
    reports = []
    ctx = await make({"id": "j1"}, reports=reports)
    ctx.progress(1.7, {"rows": 10})
    ctx.progress(data={"phase": "load"})
    await asyncio.sleep(0)
    assert reports == [("j1", (1.0, {"rows": 10})), ("j1", (None, {"phase": "load"}))]
    with pytest.raises(ValueError, match="fraction, data"):
        ctx.progress()


async def test_progress_and_heartbeat_are_safe_from_a_handler_thread():
    beats, reports = [], []
    ctx = await make({"id": "j1"}, beats, reports)

    def sync_handler():
        ctx.heartbeat()
        ctx.progress(0.5)

    await asyncio.to_thread(sync_handler)
    await asyncio.sleep(0.01)
    assert beats == [1]
    assert reports == [("j1", (0.5, None))]


async def test_set_result_is_used_when_the_handler_returns_nothing():
    ctx = await make({"id": "j1"})
    assert ctx.result_or(None) is None
    ctx.set_result({"n": 1})
    assert ctx.result_or(None) == {"n": 1}
    assert ctx.result_or("returned") == "returned"
