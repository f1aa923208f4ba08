"""Dead-worker detection and job recovery (ojs-worker-protocol.md §10), and how the admin API
lists workers (ojs-admin-api.md §9), on a real nats-server."""

import asyncio
import time

import pytest

from ojs_nats.config import Settings
from ojs_nats.model import ids
from ojs_nats.service import liveness
from ojs_nats.storage import FiredTimer
from ojs_nats.storage.workers import timer_key
from tests.integration.test_job_lifecycle import fetch, push, state, wait_for_state
from tests.support import namespace

WORKER_TIMEOUT_MS = 800


@pytest.fixture
def settings(nats_server):
    return Settings(nats_urls=(nats_server.url,), namespace=namespace(), enable_test_reset=True,
                    worker_heartbeat_timeout_ms=WORKER_TIMEOUT_MS)


async def beat(client, worker_id, *job_ids, **extra):
    response = await client.post("/ojs/v1/workers/heartbeat", json={
        "worker_id": worker_id, "active_jobs": list(job_ids), **extra})
    assert response.status_code == 200, response.text
    return response.json()


async def listed(client, worker_id):
    listing = (await client.get("/ojs/v1/admin/workers")).json()
    [item] = [w for w in listing["items"] if w["id"] == worker_id]
    return item, listing["summary"]


async def wait_for_worker_state(client, worker_id, wanted, timeout=4.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item, _ = await listed(client, worker_id)
        if item["state"] == wanted:
            return item
        await asyncio.sleep(0.05)
    raise AssertionError(f"worker {worker_id} is {item['state']}, wanted {wanted}")


async def worker_events(client, worker_id):
    events = (await client.get("/ojs/v1/events?types=worker.stopped&limit=100")).json()["events"]
    return [e for e in events if e["subject"] == worker_id]


async def test_a_silent_worker_is_declared_dead_and_its_listed_jobs_run_again(client):
    jobs = [await push(client, "dead", n=i) for i in range(3)]
    listed_ids = [jobs[0]["id"], jobs[1]["id"]]
    await fetch(client, "dead", count=3, worker_id="w-dead")
    await beat(client, "w-dead", *listed_ids, hostname="h1", queues=["dead"], concurrency=4)
    item, _ = await listed(client, "w-dead")
    assert (item["state"], item["hostname"], item["active_jobs"]) == ("running", "h1", 2)

    started = time.monotonic()
    for job_id in listed_ids:  # long before their 30 min visibility or 60 s stall timeout
        recovered = await wait_for_state(client, job_id, "available", 4)
        assert recovered["errors"][-1]["type"] == "worker_death"
        assert recovered["errors"][-1]["attempt"] == 1
    assert time.monotonic() - started < 3
    # Not in its last heartbeat: left to its own stall and visibility timeouts (§10.2 step 1).
    assert (await state(client, jobs[2]["id"]))["state"] == "active"

    dead = await wait_for_worker_state(client, "w-dead", "dead")
    assert sorted(dead["recovered_jobs"]) == sorted(listed_ids)
    _, summary = await listed(client, "w-dead")
    assert (summary["dead"], summary["stale"], summary["running"]) == (1, 1, 0)
    detail = (await client.get("/ojs/v1/admin/workers/w-dead")).json()["worker"]
    assert detail["state"] == "dead"

    [stopped] = await worker_events(client, "w-dead")
    assert (stopped["data"]["reason"], stopped["data"]["detail"]) == ("error", "heartbeat_timeout")
    assert sorted(stopped["data"]["recovered_jobs"]) == sorted(listed_ids)
    events = (await client.get("/ojs/v1/events?queues=dead&limit=100")).json()["events"]
    mine = [e for e in events if e["subject"] == jobs[0]["id"]]
    assert [e["type"] for e in mine] == ["job.enqueued", "job.started", "job.heartbeat",
                                         "job.stalled", "job.requeued"]
    data = mine[3]["data"]
    assert (data["reason"], data["timeout_kind"], data["worker_id"]) == (
        "worker_death", "stalled", "w-dead")
    assert data["limit_seconds"] == WORKER_TIMEOUT_MS / 1000

    # Another worker runs them as a new attempt; the dead one's late ACK is refused (§10.4).
    again = await fetch(client, "dead", count=2, worker_id="w-new")
    assert sorted(j["id"] for j in again) == sorted(listed_ids)
    assert {j["attempt"] for j in again} == {2}
    late = await client.post("/ojs/v1/workers/ack", json={"job_id": listed_ids[0],
                                                          "worker_id": "w-dead"})
    assert late.status_code == 409


async def test_a_worker_that_keeps_beating_is_never_declared_dead(client):
    job = await push(client, "alive")
    await fetch(client, "alive", worker_id="w-alive")
    for _ in range(8):  # 2.4 s, three worker timeouts
        await beat(client, "w-alive", job["id"])
        await asyncio.sleep(0.3)
    assert (await state(client, job["id"]))["state"] == "active"
    item, _ = await listed(client, "w-alive")
    assert item["state"] == "running"
    assert await worker_events(client, "w-alive") == []


async def test_a_dead_worker_that_beats_again_is_registered_and_watched_again(client):
    await beat(client, "w-back")
    await wait_for_worker_state(client, "w-back", "dead")
    await beat(client, "w-back")
    item, _ = await listed(client, "w-back")
    assert item["state"] == "running"
    assert "dead_at" not in item
    await wait_for_worker_state(client, "w-back", "dead")
    assert len(await worker_events(client, "w-back")) == 2


async def test_a_deregistered_worker_is_listed_as_stopped_not_dead(client):
    await beat(client, "w-bye", state="running")
    await beat(client, "w-bye", state="terminate")  # the final beat: no jobs
    stopped = await wait_for_worker_state(client, "w-bye", "stopped")
    assert "dead_at" in stopped
    [event] = await worker_events(client, "w-bye")
    assert event["data"]["reason"] == "shutdown"


async def test_a_dead_workers_job_on_its_last_attempt_is_discarded(client):
    job = await push(client, "dead-last", retry={"max_attempts": 1})
    await fetch(client, "dead-last", worker_id="w-last")
    await beat(client, "w-last", job["id"])
    discarded = await wait_for_state(client, job["id"], "discarded", 4)
    assert discarded["error"]["type"] == "worker_death"


async def test_an_unknown_worker_is_404(client):
    response = await client.get("/ojs/v1/admin/workers/nobody")
    assert response.status_code == 404


async def test_a_liveness_deadline_missed_by_the_server_watches_again_instead(client):
    # The worker's timer is handled long after it was due (gateways down, NATS unreachable):
    # its heartbeats may not have got through, so nothing is recovered yet (§10.3); a worker
    # that stays silent is declared dead one timeout later.
    ctx = client.app.state.ctx
    job = await push(client, "outage")
    await fetch(client, "outage", worker_id="w-outage")
    last = ids.now_ms()  # its last heartbeat, listing the job
    found = await ctx.storage.workers.read("w-outage")
    await ctx.storage.workers.write("w-outage", {
        "worker_id": "w-outage", "status": liveness.ALIVE, "watched": True, "state": "running",
        "last_heartbeat": ids.format_ts(last), "last_heartbeat_ms": last,
        "active_jobs": 1, "active_job_ids": [job["id"]]}, found.revision)
    await asyncio.sleep(WORKER_TIMEOUT_MS / 1000 + 0.2)  # silent past its timeout...
    # ...and its timer only handled now, long after it was due.
    overdue = FiredTimer("worker", timer_key("w-outage"), last - 60_000,
                         {"worker": "w-outage"}, "_INBOX.test-overdue-timer")
    await liveness.on_worker_timer(ctx, overdue)
    assert (await state(client, job["id"]))["state"] == "active"
    assert (await listed(client, "w-outage"))[0]["state"] != "dead"
    recovered = await wait_for_state(client, job["id"], "available", 4)
    assert recovered["errors"][-1]["type"] == "worker_death"
    await wait_for_worker_state(client, "w-outage", "dead")


async def test_a_heartbeat_reply_tells_the_worker_how_often_to_beat(client):
    # ojs-worker-protocol.md §3.3; the interval leaves the §10.3 margin (a quarter of the timeout).
    reply = await beat(client, "w-timing")
    assert (reply["heartbeat_interval"], reply["heartbeat_timeout"]) == (1, 1)
    assert reply["visibility_timeout_default"] == 1800
    assert reply["server_time"].endswith("Z")
