"""Queue pause/resume, stats and configuration through the HTTP API, on a real nats-server."""

import asyncio

import pytest

from tests.integration.test_bad_input import assert_ojs_error


async def push(client, queue, n=0, **options):
    response = await client.post("/ojs/v1/jobs", json={"type": "q.job", "args": [n],
                                                        "options": {"queue": queue, **options}})
    assert response.status_code == 201, response.text
    return response.json()["job"]


async def fetch(client, queue, count=1):
    response = await client.post("/ojs/v1/workers/fetch",
                                 json={"queues": [queue], "count": count, "worker_id": "w"})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


async def stats(client, queue):
    response = await client.get(f"/ojs/v1/queues/{queue}/stats")
    assert response.status_code == 200, response.text
    return response.json()["queue"]


async def events(client, queue):
    body = (await client.get(f"/ojs/v1/events?queues={queue}&limit=100")).json()
    return [e["type"] for e in body["events"]]


async def test_paused_queue_hands_out_nothing_and_loses_nothing(client):
    pushed = [await push(client, "paused-q", n) for n in range(3)]
    paused = await client.post("/ojs/v1/queues/paused-q/pause")
    assert paused.json()["queue"] == {"name": "paused-q", "paused": True, "status": "paused",
                                      "paused_at": paused.json()["queue"]["paused_at"]}
    pushed.append(await push(client, "paused-q", 3))  # enqueue into a paused queue is accepted
    assert await fetch(client, "paused-q", count=10) == []
    assert (await stats(client, "paused-q"))["available"] == 4
    resumed = await client.post("/ojs/v1/queues/paused-q/resume")
    assert resumed.json()["queue"]["paused"] is False
    got = await fetch(client, "paused-q", count=10)
    assert [j["id"] for j in got] == [j["id"] for j in pushed]


async def test_pause_and_resume_emit_events_once_per_change(client):
    await client.post("/ojs/v1/queues/ev-q/pause")
    await client.post("/ojs/v1/queues/ev-q/pause")
    await client.post("/ojs/v1/queues/ev-q/resume")
    assert await events(client, "ev-q") == ["queue.paused", "queue.resumed"]


async def test_stats_count_states_depth_and_throughput(client):
    for n in range(3):
        await push(client, "stats-q", n)
    await push(client, "stats-q", 9, delay_until="2099-01-01T00:00:00Z")
    [job] = await fetch(client, "stats-q")
    await client.post("/ojs/v1/workers/ack", json={"job_id": job["id"]})
    [job] = await fetch(client, "stats-q")
    await client.post("/ojs/v1/workers/nack", json={
        "job_id": job["id"], "error": {"message": "boom"}})
    body = await stats(client, "stats-q")
    assert (body["available"], body["active"], body["scheduled"], body["retryable"],
            body["completed"]) == (1, 0, 1, 1, 1)
    assert body["depth"] == 3
    assert body["completed_last_minute"] == 1
    assert body["failed_last_hour"] == 1
    assert body["throughput_per_second"] > 0
    assert body["ready_by_priority"] == {"0": 1}


async def test_queue_list_pages_with_limit_and_cursor(client):
    # HTTP binding §17: limit/cursor on every list endpoint, never more than `limit` results,
    # `has_more` and a non-empty `next_cursor` while more remain.
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        await push(client, name)
    seen, cursor = [], None
    while True:
        url = "/ojs/v1/queues?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(url)).json()
        assert len(body["queues"]) <= 2
        assert body["pagination"]["total"] == 5
        seen += [q["name"] for q in body["queues"]]
        if not body["pagination"]["has_more"]:
            assert not body["pagination"].get("next_cursor")
            break
        cursor = body["pagination"]["next_cursor"]
        assert cursor
    assert seen == names
    everything = (await client.get("/ojs/v1/queues")).json()
    assert [q["name"] for q in everything["queues"]] == names
    assert everything["pagination"]["limit"] == 50
    assert_ojs_error(await client.get("/ojs/v1/queues?limit=0"), 400, "invalid_request")


async def test_stats_of_an_unknown_queue_is_404(client):
    assert_ojs_error(await client.get("/ojs/v1/queues/never-seen/stats"), 404, "not_found")


async def test_configuration_round_trip_and_partial_updates(client):
    put = await client.put("/ojs/v1/queues/cfg-q/config", json={
        "concurrency": 4, "rate_limit": {"limit": 100, "period": "PT1M"},
        "backpressure": {"max_depth": 1000, "strategy": "reject"},
        "default_retry": {"max_attempts": 7, "initial_interval": "PT2S"},
        "retention": {"completed": "P1D"}, "dead_letter_ttl": "P30D", "visibility_timeout": 60})
    assert put.status_code == 200, put.text
    config = put.json()["config"]
    assert config["concurrency"] == 4
    assert config["rate_limit"] == {"limit": 100, "period": "PT1M"}
    assert config["backpressure"]["max_depth"] == 1000
    assert config["default_retry"]["max_attempts"] == 7
    again = await client.put("/ojs/v1/queues/cfg-q/config", json={"concurrency": None})
    assert again.json()["config"]["concurrency"] is None
    assert again.json()["config"]["rate_limit"] == {"limit": 100, "period": "PT1M"}
    read = (await client.get("/ojs/v1/queues/cfg-q")).json()
    assert read["config"]["visibility_timeout"] == 60
    assert read["state"] == "active"
    assert "queue.config_updated" in await events(client, "cfg-q")


async def test_queue_default_retry_applies_to_jobs_without_their_own(client):
    await client.put("/ojs/v1/queues/retry-q/config",
                     json={"default_retry": {"max_attempts": 7}})
    own = await push(client, "retry-q", 1, retry={"initial_interval": "PT3S"})
    plain = await push(client, "retry-q", 2)
    assert plain["max_attempts"] == 7
    assert own["max_attempts"] == 7  # a partial policy is merged over the queue's default
    assert own["retry"]["initial_interval"] == "PT3S"


async def test_queue_visibility_timeout_is_the_lease_of_its_jobs(client):
    await client.put("/ojs/v1/queues/vis-q/config", json={"visibility_timeout": 1})
    job = await push(client, "vis-q")
    await fetch(client, "vis-q")
    await asyncio.sleep(1.6)
    assert (await client.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"]["state"] == "available"


async def test_create_then_delete_an_empty_queue(client):
    created = await client.post("/ojs/v1/queues", json={"name": "made-q",
                                                        "config": {"concurrency": 2}})
    assert created.status_code == 201, created.text
    assert created.json()["config"]["concurrency"] == 2
    assert_ojs_error(await client.post("/ojs/v1/queues", json={"name": "made-q"}), 409, "conflict")
    deleted = await client.request("DELETE", "/ojs/v1/queues/made-q")
    assert deleted.status_code == 200, deleted.text
    assert_ojs_error(await client.get("/ojs/v1/queues/made-q/config"), 404, "not_found")


async def test_deleting_a_queue_with_waiting_jobs_is_409_and_keeps_them(client):
    job = await push(client, "busy-q")
    assert_ojs_error(await client.request("DELETE", "/ojs/v1/queues/busy-q"), 409, "conflict")
    assert (await client.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"]["state"] == "available"
    assert (await client.get("/ojs/v1/queues/busy-q/config")).status_code == 200


async def test_admin_api_spelling_of_the_same_settings(client):
    await push(client, "adm-q")
    paused = await client.post("/ojs/v1/admin/queues/adm-q/pause")
    assert paused.json()["paused"] is True
    limited = await client.put("/ojs/v1/admin/queues/adm-q/rate-limit", json={
        "concurrency": 3, "rate": {"limit": 10, "period": "PT1S"}})
    assert limited.status_code == 200, limited.text
    detail = limited.json()
    assert detail["configuration"]["concurrency"] == 3
    assert detail["configuration"]["rate_limit"] == {"limit": 10, "period": "PT1S"}
    assert detail["counts"]["available"] == 1
    assert detail["state"] == "paused"
    listing = (await client.get("/ojs/v1/admin/queues")).json()
    assert [q["name"] for q in listing["items"]] == ["adm-q"]
    bp = await client.put("/ojs/v1/admin/queues/adm-q/config",
                          json={"backpressure": {"max_depth": 5, "strategy": "block"}})
    assert bp.json()["configuration"]["backpressure"]["strategy"] == "block"
    resumed = await client.post("/ojs/v1/admin/queues/adm-q/resume")
    assert resumed.json()["paused"] is False
    assert_ojs_error(await client.post("/ojs/v1/admin/queues/adm-q/drain"), 404, "not_found")


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("PUT", "/ojs/v1/queues/bad-cfg/config", {"concurrency": -1}, 400, "invalid_request"),
    ("PUT", "/ojs/v1/queues/bad-cfg/config", {"colour": "red"}, 400, "invalid_request"),
    ("PUT", "/ojs/v1/queues/bad-cfg/config", {"rate_limit": {"limit": 5}}, 400, "invalid_request"),
    ("PUT", "/ojs/v1/queues/bad-cfg/config", {"default_retry": {"max_attempts": -1}}, 422,
     "validation_error"),
    ("PUT", "/ojs/v1/queues/bad-cfg/config", {"dead_letter_queue": "x"}, 422, "unsupported"),
    ("PUT", "/ojs/v1/queues/bad-cfg/config", [1], 400, "invalid_request"),
    ("PUT", "/ojs/v1/queues/Bad_Name/config", {"concurrency": 1}, 400, "invalid_request"),
    ("POST", "/ojs/v1/queues/Bad_Name/pause", {}, 400, "invalid_request"),
    ("POST", "/ojs/v1/queues", {"config": {}}, 400, "invalid_request"),
    ("POST", "/ojs/v1/queues", {"name": "bad-cfg", "config": []}, 400, "invalid_request"),
    ("DELETE", "/ojs/v1/queues/bad-cfg", {"strategy": "move"}, 422, "unsupported"),
    ("PUT", "/ojs/v1/admin/queues/bad-cfg/rate-limit", {"speed": 1}, 400, "invalid_request"),
])
async def test_bad_queue_requests_are_ojs_errors_and_change_nothing(
        client, method, path, body, status, code):
    await push(client, "bad-cfg")
    before = (await client.get("/ojs/v1/queues/bad-cfg")).json()
    assert_ojs_error(await client.request(method, path, json=body), status, code)
    after = (await client.get("/ojs/v1/queues/bad-cfg")).json()
    assert after["config"] == before["config"]
    assert after["paused"] is False
    assert after["updated_at"] == before["updated_at"]


async def wait_gone(client, job_id, timeout=6.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if (await client.get(f"/ojs/v1/jobs/{job_id}")).status_code == 404:
            return True
        await asyncio.sleep(0.2)
    return False


async def test_queue_retention_and_dead_letter_ttl_apply_to_finished_jobs(client):
    await client.put("/ojs/v1/queues/short-q/config", json={
        "retention": {"completed": "PT1S"}, "dead_letter_ttl": "PT1S"})
    done = await push(client, "short-q", 1)
    dead = await push(client, "short-q", 2, retry={"max_attempts": 1,
                                                   "on_exhaustion": "dead_letter"})
    assert len(await fetch(client, "short-q", count=2)) == 2
    await client.post("/ojs/v1/workers/ack", json={"job_id": done["id"]})
    await client.post("/ojs/v1/workers/nack", json={"job_id": dead["id"],
                                                      "error": {"message": "x"}})
    listed = (await client.get("/ojs/v1/dead-letter?queue=short-q")).json()["jobs"]
    assert [j["id"] for j in listed] == [dead["id"]]
    assert await wait_gone(client, done["id"])
    assert await wait_gone(client, dead["id"])
    assert (await client.get("/ojs/v1/dead-letter?queue=short-q")).json()["jobs"] == []


async def test_queue_default_timeout_limits_jobs_without_their_own(client):
    await client.put("/ojs/v1/queues/tmo-q/config", json={"default_timeout": 1})
    job = await push(client, "tmo-q", retry={"max_attempts": 3, "initial_interval": "PT60S"})
    await fetch(client, "tmo-q")
    await asyncio.sleep(1.6)
    info = (await client.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"]
    assert info["state"] == "retryable"
    assert info["error"]["code"] == "timeout"


async def test_concurrent_transitions_count_and_log_every_one(client):
    # Events, counters and throughput ticks of transitions running at once go out together
    # (storage/follow_ups.py): none may be lost or counted twice in the merge.
    n = 40
    await asyncio.gather(*(push(client, "merge-q", i) for i in range(n)))
    jobs = await fetch(client, "merge-q", count=n)
    assert len(jobs) == n
    acks = await asyncio.gather(*(
        client.post("/ojs/v1/workers/ack", json={"job_id": j["id"]}) for j in jobs))
    assert all(a.status_code == 200 for a in acks)
    body = await stats(client, "merge-q")
    assert (body["available"], body["active"], body["completed"]) == (0, 0, n)
    assert body["completed_last_hour"] == n  # (the last minute may have just rolled over)
    logged = (await client.get("/ojs/v1/events?queues=merge-q&limit=500")).json()["events"]
    for kind in ("job.enqueued", "job.started", "job.completed"):
        assert sorted(e["subject"] for e in logged if e["type"] == kind) == sorted(
            j["id"] for j in jobs), kind
