"""A job's life through the HTTP API, on a real nats-server (app in-process)."""

import asyncio
import time

from ojs_nats.model import ids


async def push(client, queue="life", **options):
    body = {"type": "a.b", "args": [options.pop("n", 0)], "options": {"queue": queue, **options}}
    response = await client.post("/ojs/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/ojs/v1/jobs/{response.json()['job']['id']}"
    return response.json()["job"]


async def fetch(client, *queues, count=1, **extra):
    response = await client.post("/ojs/v1/workers/fetch",
                                 json={"queues": list(queues), "count": count, **extra})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


async def state(client, job_id):
    return (await client.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]


async def wait_for_state(client, job_id, wanted, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await state(client, job_id)
        if job["state"] == wanted:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"{job_id} still {job['state']}, wanted {wanted}")


async def test_priority_order_then_fifo_within_a_priority(client):
    pushed = [await push(client, "prio", priority=p, n=i)
              for i, p in enumerate([0, 10, -10, 10, 0, 100])]
    got = await fetch(client, "prio", count=10)
    order = [(j["priority"], j["args"][0]) for j in got]
    assert order == [(100, 5), (10, 1), (10, 3), (0, 0), (0, 4), (-10, 2)]
    assert {j["id"] for j in got} == {j["id"] for j in pushed}


async def test_queues_are_served_left_to_right(client):
    low = await push(client, "q-low")
    high = await push(client, "q-high")
    got = await fetch(client, "q-high", "q-low", count=2)
    assert [j["id"] for j in got] == [high["id"], low["id"]]


async def test_ack_stores_the_result_and_emits_events(client):
    job = await push(client, "events-q")
    [claimed] = await fetch(client, "events-q", worker_id="w-1")
    assert claimed["attempt"] == 1
    assert claimed["state"] == "active"
    ack = await client.post("/ojs/v1/workers/ack",
                            json={"job_id": job["id"], "result": {"n": 42}, "worker_id": "w-1"})
    assert ack.json()["state"] == "completed"
    assert (await state(client, job["id"]))["result"] == {"n": 42}
    events = (await client.get("/ojs/v1/events?queues=events-q")).json()["events"]
    assert [e["type"] for e in events] == ["job.enqueued", "job.started", "job.completed"]
    assert all(e["subject"] == job["id"] and e["id"].startswith("evt_") for e in events)
    only = (await client.get("/ojs/v1/events?queues=events-q&types=job.started")).json()
    assert [e["type"] for e in only["events"]] == ["job.started"]
    after = (await client.get(f"/ojs/v1/events?queues=events-q&after={only['cursor']}")).json()
    assert [e["type"] for e in after["events"]] == ["job.completed"]


async def test_fetch_without_worker_id_emits_a_well_formed_started_event(client):
    job = await push(client, "anon-q")
    [claimed] = await fetch(client, "anon-q")
    assert "worker_id" not in claimed
    body = (await client.get("/ojs/v1/events?queues=anon-q&types=job.started")).json()
    [started] = body["events"]
    assert started["data"]["worker_id"] == "anonymous"
    assert started["data"]["attempt"] == 1
    assert {"job_type", "queue"} <= set(started["data"])
    # The lease stays unowned: any worker may still acknowledge the job.
    ack = await client.post("/ojs/v1/workers/ack", json={"job_id": job["id"], "worker_id": "w-7"})
    assert ack.status_code == 200, ack.text


async def test_retry_then_dead_letter_then_manual_retry(client):
    retry = {"max_attempts": 2, "initial_interval": "PT0.2S", "jitter": False,
             "on_exhaustion": "dead_letter"}
    job = await push(client, "dlq", retry=retry)
    await fetch(client, "dlq")
    first = await client.post("/ojs/v1/workers/nack", json={
        "job_id": job["id"], "error": {"code": "handler_error", "message": "boom"}})
    assert first.json()["state"] == "retryable"
    assert first.json()["retry_delay_ms"] == 200
    await wait_for_state(client, job["id"], "available", 3)
    [again] = await fetch(client, "dlq")
    assert again["attempt"] == 2
    second = await client.post("/ojs/v1/workers/nack", json={
        "job_id": job["id"], "error": {"code": "handler_error", "message": "boom again"}})
    assert second.json()["state"] == "discarded"
    listing = (await client.get("/ojs/v1/dead-letter?queue=dlq")).json()
    assert [j["id"] for j in listing["jobs"]] == [job["id"]]
    assert listing["pagination"]["total"] == 1
    assert len(listing["jobs"][0]["errors"]) == 2
    retried = await client.post(f"/ojs/v1/dead-letter/{job['id']}/retry")
    assert retried.json()["job"]["attempt"] == 0
    assert (await client.get("/ojs/v1/dead-letter?queue=dlq")).json()["jobs"] == []
    [third] = await fetch(client, "dlq")
    assert third["attempt"] == 1


async def test_visibility_timeout_requeues_and_heartbeat_extends(client):
    kept = await push(client, "vis", visibility_timeout_ms=600)
    lost = await push(client, "vis", visibility_timeout_ms=600)
    await fetch(client, "vis", count=2, worker_id="w-vis")
    for _ in range(4):
        await asyncio.sleep(0.3)
        beat = await client.post("/ojs/v1/workers/heartbeat",
                                 json={"worker_id": "w-vis", "active_jobs": [kept["id"]]})
        assert beat.json()["jobs_extended"] == [kept["id"]]
        assert beat.json()["state"] == "running"
    assert (await state(client, kept["id"]))["state"] == "active"
    requeued = await state(client, lost["id"])
    assert requeued["state"] == "available"
    assert requeued["errors"][-1]["code"] == "visibility_timeout"
    [refetched] = await fetch(client, "vis")
    assert refetched["id"] == lost["id"]
    assert refetched["attempt"] == 2


async def test_execution_timeout_fails_the_attempt(client):
    job = await push(client, "exec", timeout_ms=300, retry={"max_attempts": 1})
    await fetch(client, "exec")
    failed = await wait_for_state(client, job["id"], "discarded", 3)
    assert failed["error"]["code"] == "timeout"


async def test_scheduled_job_becomes_available_on_time(client):
    job = await push(client, "later", scheduled_at="+PT0.5S")
    assert job["state"] == "scheduled"
    assert await fetch(client, "later") == []
    started = time.monotonic()
    await wait_for_state(client, job["id"], "available", 3)
    assert 0.3 < time.monotonic() - started < 1.5
    assert len(await fetch(client, "later")) == 1


async def test_a_schedule_fired_ahead_of_time_never_promotes_the_job_early(client):
    # Schedules fire LEAD_MS early on purpose; the gateway must hold the job back until due.
    job = await push(client, "later-long", scheduled_at="+PT1.5S")
    due = ids.parse_ts(job["scheduled_at"]) / 1000
    while (await state(client, job["id"]))["state"] == "scheduled":
        assert time.time() < due + 2, "not promoted within 2 s of its time"
        await asyncio.sleep(0.02)
    assert time.time() >= due - 0.05  # the clock is shared; 50 ms for the poll's own timing
    assert (await state(client, job["id"]))["state"] == "available"


async def test_expired_job_is_discarded_and_never_fetched(client):
    job = await push(client, "ttl", expires_at="+PT0.4S")
    await asyncio.sleep(0.6)
    assert await fetch(client, "ttl") == []
    expired = await state(client, job["id"])
    assert expired["state"] == "discarded"
    assert "completed_at" not in expired


async def test_pending_job_waits_for_activation(client):
    job = await push(client, "staged", pending=True)
    assert job["state"] == "pending"
    assert await fetch(client, "staged") == []
    activated = await client.post(f"/ojs/v1/jobs/{job['id']}/activate")
    assert activated.json()["job"]["state"] == "available"
    assert [j["id"] for j in await fetch(client, "staged")] == [job["id"]]
    again = await client.post(f"/ojs/v1/jobs/{job['id']}/activate")
    assert again.status_code == 409


async def test_cancelled_available_job_is_never_fetched(client):
    job = await push(client, "cancel-q")
    cancelled = await client.delete(f"/ojs/v1/jobs/{job['id']}")
    assert cancelled.json()["job"]["previous_state"] == "available"
    assert await fetch(client, "cancel-q") == []


async def test_alias_endpoints_behave_like_the_worker_endpoints(client):
    job = await push(client, "alias")
    fetched = await client.post("/ojs/v1/jobs/fetch", json={"queues": ["alias"]})
    assert fetched.json()["jobs"][0]["id"] == job["id"]
    failed = await client.post(f"/ojs/v1/jobs/{job['id']}/fail",
                               json={"error": {"code": "x", "message": "m"}})
    assert failed.json()["state"] == "retryable"
    other = await push(client, "alias2")
    await client.post("/ojs/v1/jobs/fetch", json={"queues": ["alias2"]})
    acked = await client.post(f"/ojs/v1/jobs/{other['id']}/ack", json={"result": 1})
    assert acked.json()["state"] == "completed"


async def test_queue_list_counts_by_state(client):
    await push(client, "listed")
    await push(client, "listed")
    await fetch(client, "listed")
    queues = {q["name"]: q for q in (await client.get("/ojs/v1/queues")).json()["queues"]}
    assert queues["listed"]["available"] == 1
    assert queues["listed"]["active"] == 1


async def test_health_and_manifest(client):
    health = await client.get("/ojs/v1/health")
    assert health.json()["status"] == "ok"
    assert health.json()["backend"]["type"] == "nats"
    manifest = (await client.get("/ojs/manifest")).json()
    assert manifest["specversion"] == "1.0"
    assert manifest["conformance_level"] >= 1
    assert (await client.get("/ready")).status_code == 200


async def test_request_id_is_echoed(client):
    response = await client.get("/ojs/v1/health", headers={"x-request-id": "req-abc"})
    assert response.headers["x-request-id"] == "req-abc"


async def test_batch_ack_settles_each_job_as_a_single_ack_would(client):
    pushed = [await push(client, "batch-ack", n=i) for i in range(3)]
    fetched = await fetch(client, "batch-ack", count=2, worker_id="w-b")
    waiting = next(j for j in pushed if j["id"] not in {f["id"] for f in fetched})
    response = await client.post("/ojs/v1/workers/ack/batch", json={"worker_id": "w-b", "acks": [
        {"job_id": fetched[0]["id"], "result": {"n": 0}},
        {"job_id": fetched[1]["id"]},
        {"job_id": waiting["id"]},  # not active: refused, like a single ACK
        {"job_id": "01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6"},  # unknown
    ]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["acknowledged"], body["failed"]) == (2, 2)
    results = body["results"]
    assert [r["acknowledged"] for r in results] == [True, True, False, False]
    assert results[2]["error"]["code"] == "conflict"
    assert results[3]["error"]["code"] == "not_found"
    assert (await state(client, fetched[0]["id"]))["result"] == {"n": 0}
    assert (await state(client, waiting["id"]))["state"] == "available"
    for bad in ({"acks": []}, {"acks": "x"}, {"acks": [1]}, {"acks": [{}]}):
        assert (await client.post("/ojs/v1/workers/ack/batch", json=bad)).status_code == 400


async def test_one_shared_lease_timer_requeues_every_expired_job_of_a_fetch(client):
    pushed = [await push(client, "lease-group", n=i, visibility_timeout_ms=500) for i in range(6)]
    claimed = await fetch(client, "lease-group", count=6, worker_id="w-lg")
    assert {j["id"] for j in claimed} == {j["id"] for j in pushed}
    await client.post("/ojs/v1/workers/ack", json={"job_id": claimed[0]["id"]})
    keep = claimed[1]["id"]
    for _ in range(3):  # one job's lease is kept alive past the group's deadline
        await asyncio.sleep(0.3)
        await client.post("/ojs/v1/workers/heartbeat",
                          json={"worker_id": "w-lg", "active_jobs": [keep]})
    states = {j["id"]: (await state(client, j["id"]))["state"] for j in claimed}
    assert states[claimed[0]["id"]] == "completed"
    assert states[keep] == "active"
    assert [states[j["id"]] for j in claimed[2:]] == ["available"] * 4
    again = await fetch(client, "lease-group", count=10)
    assert {j["id"] for j in again} == {j["id"] for j in claimed[2:]}
    assert all(j["attempt"] == 2 for j in again)
    await wait_for_state(client, keep, "available", 3)  # the kept one expires on its own later


async def test_many_jobs_due_at_once_are_promoted_together_on_time_and_counted(
    client, monkeypatch
):
    from ojs_nats.service import wake

    handled = []
    original = wake.promote_many

    async def counting(ctx, timers):
        left = await original(ctx, timers)
        handled.append(len(timers) - len(left))
        return left

    monkeypatch.setattr(wake, "promote_many", counting)
    due = ids.format_ts(int(time.time() * 1000) + 1500)
    specs = [{"type": "a.b", "args": [i], "options": {
        "queue": f"wave-{i % 2}", "priority": i % 3, "scheduled_at": due}} for i in range(80)]
    created = await client.post("/ojs/v1/jobs/batch", json={"jobs": specs})
    assert created.status_code == 201, created.text
    ids_ = {job["id"] for job in created.json()["jobs"]}
    assert await fetch(client, "wave-0", "wave-1", count=80) == []
    deadline = ids.parse_ts(due) / 1000
    got: list[dict] = []
    while len(got) < 80 and time.time() < deadline + 5:
        got += await fetch(client, "wave-0", "wave-1", count=80)
        await asyncio.sleep(0.02)
    assert time.time() >= deadline - 0.05
    assert sorted(job["id"] for job in got) == sorted(ids_)  # each once, none missing
    assert sum(handled) > 0, "no promotion went through the batch"
    for name in ("wave-0", "wave-1"):
        counts = (await client.get(f"/ojs/v1/queues/{name}/stats")).json()["queue"]
        assert (counts["scheduled"], counts["available"], counts["active"]) == (0, 0, 40)
    events = (await client.get("/ojs/v1/events?queues=wave-0,wave-1&limit=1000")).json()["events"]
    enqueued = [e["data"]["job_id"] for e in events if e["type"] == "job.enqueued"]
    assert sorted(enqueued) == sorted(ids_)  # one event each, when each became available
