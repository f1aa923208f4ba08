"""Stalled jobs: an active job without heartbeats for its heartbeat timeout (ojs-timeouts.md
§5.5, §7.3, §8, §11.1), detected by the job's durable lease timer, on a real nats-server."""

import asyncio

import pytest

from ojs_nats.config import Settings
from tests.integration.test_job_lifecycle import fetch, push, state, wait_for_state
from tests.support import namespace

#: The server default for jobs that set no heartbeat timeout, short for these tests.
DEFAULT_HEARTBEAT_MS = 1000
NO_BACKOFF = {"max_attempts": 3, "initial_interval": "PT0.1S", "jitter": False}


@pytest.fixture
def settings(nats_server):
    return Settings(nats_urls=(nats_server.url,), namespace=namespace(), enable_test_reset=True,
                    default_heartbeat_timeout_ms=DEFAULT_HEARTBEAT_MS)


async def events_of(client, job_id, queue):
    events = (await client.get(f"/ojs/v1/events?queues={queue}&limit=100")).json()["events"]
    return [e for e in events if e["subject"] == job_id]


async def beat(client, worker_id, *job_ids):
    response = await client.post("/ojs/v1/workers/heartbeat",
                                 json={"worker_id": worker_id, "active_jobs": list(job_ids)})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_job_without_heartbeats_stalls_is_retried_and_runs_again(client):
    job = await push(client, "stall", heartbeat_timeout_ms=600, retry=NO_BACKOFF)
    assert job["heartbeat_timeout_ms"] == 600
    [claimed] = await fetch(client, "stall", worker_id="w-gone")
    stalled = await wait_for_state(client, job["id"], "retryable", 3)
    assert stalled["error"]["type"] == "stalled"
    assert stalled["error"]["timeout_kind"] == "stalled"
    assert stalled["error"]["limit_seconds"] == 0.6
    assert stalled["error"]["elapsed_seconds"] >= 0.6
    assert stalled["errors"][-1]["type"] == "stalled"
    assert stalled["errors"][-1]["attempt"] == 1

    kinds = [e["type"] for e in await events_of(client, job["id"], "stall")]
    assert kinds == ["job.enqueued", "job.started", "job.stalled", "job.failed", "job.retrying"]
    [event] = [e for e in await events_of(client, job["id"], "stall") if e["type"] == "job.stalled"]
    data = event["data"]
    assert (data["job_id"], data["job_type"], data["queue"]) == (job["id"], "a.b", "stall")
    assert (data["timeout_kind"], data["limit_seconds"], data["attempt"]) == ("stalled", 0.6, 1)
    assert data["elapsed_seconds"] >= 0.6
    assert data["worker_id"] == "w-gone"

    # Made available again for another worker (after the retry policy's backoff).
    await wait_for_state(client, job["id"], "available", 3)
    [again] = await fetch(client, "stall", worker_id="w-new")
    assert (again["id"], again["attempt"]) == (claimed["id"], 2)
    # The worker that stalled no longer holds the job (§5.6): its ACK is refused.
    late = await client.post("/ojs/v1/workers/ack", json={"job_id": job["id"],
                                                          "worker_id": "w-gone"})
    assert late.status_code == 409


async def test_heartbeats_and_progress_reset_the_heartbeat_clock(client):
    beaten = await push(client, "stall-kept", heartbeat_timeout_ms=800)
    reported = await push(client, "stall-kept", heartbeat_timeout_ms=800)
    await fetch(client, "stall-kept", count=2, worker_id="w-alive")
    for _ in range(5):  # 2 s in all, 2.5 heartbeat timeouts
        await asyncio.sleep(0.4)
        assert (await beat(client, "w-alive", beaten["id"]))["jobs_extended"] == [beaten["id"]]
        progress = await client.put(f"/ojs/v1/jobs/{reported['id']}/progress",
                                    json={"progress": 0.5})
        assert progress.status_code == 200
    assert (await state(client, beaten["id"]))["state"] == "active"
    assert (await state(client, reported["id"]))["state"] == "active"
    await asyncio.sleep(1.2)  # silence: now both stall
    for job in (beaten, reported):
        assert (await state(client, job["id"]))["error"]["type"] == "stalled"


async def test_a_stalled_job_with_no_attempts_left_is_discarded(client):
    job = await push(client, "stall-last", heartbeat_timeout_ms=500, retry={"max_attempts": 1})
    await fetch(client, "stall-last")
    discarded = await wait_for_state(client, job["id"], "discarded", 3)
    assert discarded["error"]["type"] == "stalled"
    kinds = [e["type"] for e in await events_of(client, job["id"], "stall-last")]
    assert kinds[-3:] == ["job.stalled", "job.failed", "job.discarded"]


async def test_the_server_default_applies_and_a_job_may_set_its_own_in_seconds(client):
    default = await push(client, "stall-default", retry=NO_BACKOFF)
    own = await push(client, "stall-default", heartbeat_timeout=30)
    assert own["heartbeat_timeout_ms"] == 30_000
    await fetch(client, "stall-default", count=2)
    stalled = await wait_for_state(client, default["id"], "retryable", 3)
    assert stalled["error"]["limit_seconds"] == DEFAULT_HEARTBEAT_MS / 1000
    assert (await state(client, own["id"]))["state"] == "active"


async def test_a_shorter_visibility_timeout_still_wins_over_the_heartbeat_timeout(client):
    job = await push(client, "stall-vis", visibility_timeout_ms=400, heartbeat_timeout_ms=5000)
    await fetch(client, "stall-vis")
    requeued = await wait_for_state(client, job["id"], "available", 3)
    assert requeued["errors"][-1]["type"] == "visibility_timeout"
    kinds = [e["type"] for e in await events_of(client, job["id"], "stall-vis")]
    assert "job.stalled" not in kinds


async def test_a_bad_heartbeat_timeout_is_refused(client):
    for bad in ({"heartbeat_timeout": 0}, {"heartbeat_timeout_ms": -1},
                {"heartbeat_timeout": "60"}):
        response = await client.post("/ojs/v1/jobs", json={"type": "a.b", "args": [],
                                                           "options": bad})
        assert response.status_code == 400, bad
