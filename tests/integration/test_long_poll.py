"""FETCH as a long poll (`wait_ms`, an extension): an idle worker gets a new job at once
instead of at its next poll, and an empty answer comes only after the wait."""

import asyncio
import time

from ojs_nats.service import fetch as fetch_service
from tests.integration.test_job_lifecycle import fetch, push


async def test_a_waiting_fetch_gets_a_job_pushed_while_it_waits(client):
    started = time.monotonic()
    waiting = asyncio.create_task(fetch(client, "lp-idle", "lp-other", count=5, wait_ms=5_000))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    job = await push(client, "lp-other")
    got = await asyncio.wait_for(waiting, 5)
    elapsed = time.monotonic() - started
    assert [j["id"] for j in got] == [job["id"]]
    assert got[0]["state"] == "active"
    # Woken by the entry's publish, not by the half-second recheck nor the 5 s deadline.
    assert elapsed < 0.3 + 0.45, f"answered after {elapsed:.2f} s"


async def test_an_empty_long_poll_answers_after_its_wait_and_names_the_longest(client):
    started = time.monotonic()
    response = await client.post("/ojs/v1/workers/fetch",
                                 json={"queues": ["lp-empty"], "wait_ms": 700})
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["jobs"] == []
    assert 0.65 <= elapsed < 2.0, elapsed
    assert response.headers["ojs-fetch-wait-max-ms"] == "30000"


async def test_without_wait_an_empty_fetch_answers_at_once(client):
    started = time.monotonic()
    assert await fetch(client, "lp-none") == []
    assert time.monotonic() - started < 0.5


async def test_a_job_offered_again_later_is_found_by_a_waiting_fetch(client):
    """A NAK'd entry comes back without a new publish: the periodic look finds it."""
    job = await push(client, "lp-again")
    assert [j["id"] for j in await fetch(client, "lp-again")] == [job["id"]]
    nack = await client.post("/ojs/v1/workers/nack", json={
        "job_id": job["id"], "requeue": True, "error": {"code": "x", "message": "again"}})
    assert nack.status_code == 200, nack.text
    got = await fetch(client, "lp-again", wait_ms=3_000)
    assert [j["id"] for j in got] == [job["id"]]


async def test_bad_waits_are_refused(client):
    for wait in (-1, 30_001, "5", 1.5, True):
        response = await client.post("/ojs/v1/workers/fetch",
                                     json={"queues": ["lp-bad"], "wait_ms": wait})
        assert response.status_code == 400, (wait, response.text)
        assert response.json()["error"]["code"] == "invalid_request"


async def test_many_waiting_fetches_share_one_watch_and_each_job_goes_once(client):
    waiters = [asyncio.create_task(fetch(client, "lp-many", wait_ms=3_000)) for _ in range(6)]
    await asyncio.sleep(0.2)
    pushed = {(await push(client, "lp-many", n=i))["id"] for i in range(6)}
    results = await asyncio.wait_for(asyncio.gather(*waiters), 6)
    got = [j["id"] for jobs in results for j in jobs]
    assert sorted(got) == sorted(pushed)  # each once, none twice
    ready = client.app.state.ctx.storage.ready
    assert not ready._watchers  # nobody waits...
    assert not ready._watches  # ...so no subscription is left


async def test_a_draining_gateway_ends_its_long_polls(client):
    ctx = client.app.state.ctx
    waiting = asyncio.create_task(fetch(client, "lp-drain", wait_ms=10_000))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    ctx.draining = True
    try:
        assert await asyncio.wait_for(waiting, 5) == []
        assert time.monotonic() - started < 1.0
    finally:
        ctx.draining = False


async def test_a_fetch_waiting_for_a_lagging_consumer_takes_a_new_entry_at_once(
    client, monkeypatch
):
    """The stream counts an entry the consumer will not deliver (another fetch holds it): the
    fetch waits for the consumer, and a job pushed meanwhile is answered at once, not when
    that wait runs out."""
    monkeypatch.setattr(fetch_service, "LAGGING_CONSUMER_WAIT_MS", 3_000)
    held = await push(client, "lp-lag")
    ready = client.app.state.ctx.storage.ready
    assert [e.job_id for e in await ready.pull("lp-lag", 0, 5)] == [held["id"]]
    started = time.monotonic()
    waiting = asyncio.create_task(fetch(client, "lp-lag", count=5))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    job = await push(client, "lp-lag")
    got = await asyncio.wait_for(waiting, 5)
    assert [j["id"] for j in got] == [job["id"]]
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"answered after {elapsed:.2f} s (the wait is 3 s)"


async def test_a_waiting_fetch_woken_before_the_record_is_written_waits_for_it(
    client, monkeypatch
):
    """PUSH writes the ready entry, then the record one round trip later: the long poll the
    entry wakes reads the record a moment too soon, and must not offer the job again later
    (here 3 s) when the record is a few milliseconds behind."""
    monkeypatch.setattr(fetch_service, "IN_FLIGHT_RETRY_MS", 3_000)
    records = client.app.state.ctx.storage.jobs
    create, misses = records.create, []

    async def slow_create(job_id, record, ttl_s=None):
        await asyncio.sleep(0.012)
        return await create(job_id, record, ttl_s)

    async def counting_get(job_id, get=records.get):
        stored = await get(job_id)
        misses.extend([job_id] if stored is None else [])
        return stored

    monkeypatch.setattr(records, "create", slow_create)
    monkeypatch.setattr(records, "get", counting_get)
    waiting = asyncio.create_task(fetch(client, "lp-early", count=5, wait_ms=5_000))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    job = await push(client, "lp-early")
    got = await asyncio.wait_for(waiting, 6)
    elapsed = time.monotonic() - started
    assert [j["id"] for j in got] == [job["id"]]
    assert job["id"] in misses  # the fetch did read before the record existed
    assert elapsed < 1.5, f"answered after {elapsed:.2f} s"


async def test_a_waiting_fetch_woken_before_the_stream_stored_the_entry_looks_again_soon(
    client, monkeypatch
):
    """The wake is a core NATS delivery of the entry, which can reach the gateway before the
    stream has stored it (~0.25% of wakes on an idle machine): the look it triggers finds the
    queue empty, and the job must not wait for the periodic recheck (here 3 s)."""
    monkeypatch.setattr(fetch_service, "LONG_POLL_RECHECK_MS", 3_000)
    ready = client.app.state.ctx.storage.ready
    counts, stale = ready.counts, []

    async def lagging_counts(queue):
        if stale:
            return stale.pop() or {}  # what the stream answers a moment before it stores
        return await counts(queue)

    monkeypatch.setattr(ready, "counts", lagging_counts)
    waiting = asyncio.create_task(fetch(client, "lp-stale", count=5, wait_ms=5_000))
    await asyncio.sleep(0.2)
    stale.append({})
    started = time.monotonic()
    job = await push(client, "lp-stale")
    got = await asyncio.wait_for(waiting, 6)
    elapsed = time.monotonic() - started
    assert [j["id"] for j in got] == [job["id"]]
    assert not stale  # the woken look did get the stale answer
    assert elapsed < 1.0, f"answered after {elapsed:.2f} s"
