"""Cron jobs through the HTTP API on a real nats-server: registration, ticks, overlap policies."""

import asyncio
import time

import pytest


def every_second(name, queue, **extra):
    return {"name": name, "expression": "* * * * * *",
            "job_template": {"type": "cron.tick", "args": [name], "options": {"queue": queue}},
            **extra}


async def jobs_in(client, queue, count=50):
    response = await client.post("/ojs/v1/workers/fetch", json={"queues": [queue],
                                                                "count": count})
    return response.json()["jobs"]


async def test_register_get_list_toggle_delete(client):
    created = await client.post("/ojs/v1/cron", json={
        "name": "nightly.report", "cron": "0 9 * * *", "timezone": "America/New_York",
        "type": "report.generate", "args": [1], "options": {"queue": "reports"}})
    assert created.status_code == 201, created.text
    cron = created.json()["cron"]
    assert cron["expression"] == "0 9 * * *"
    assert cron["timezone"] == "America/New_York"
    assert cron["next_run_at"].endswith("Z")
    assert created.json()["cron_job"] == cron
    again = await client.post("/ojs/v1/cron", json={
        "name": "nightly.report", "expression": "0 10 * * *",
        "job_template": {"type": "report.generate", "args": [2]}})
    assert again.status_code == 200  # upsert
    assert (await client.get("/ojs/v1/cron/nightly.report")).json()["cron"]["expression"] == (
        "0 10 * * *")
    disabled = await client.patch("/ojs/v1/cron/nightly.report", json={"enabled": False})
    assert disabled.json()["cron"]["next_run_at"] is None
    listed = (await client.get("/ojs/v1/cron?enabled=false")).json()
    assert [c["name"] for c in listed["crons"]] == ["nightly.report"]
    assert (await client.get("/ojs/v1/cron?enabled=true")).json()["crons"] == []
    deleted = await client.delete("/ojs/v1/cron/nightly.report")
    assert deleted.json()["deleted"] is True
    assert (await client.get("/ojs/v1/cron/nightly.report")).status_code == 404
    assert (await client.delete("/ojs/v1/cron/nightly.report")).status_code == 404


async def test_cron_list_pages_with_limit_and_cursor(client):
    # HTTP binding §17: limit/cursor on every list endpoint, with a `pagination` object.
    names = [f"page.{i}" for i in range(3)]
    for name in names:
        response = await client.post("/ojs/v1/cron", json={
            "name": name, "expression": "0 9 * * *", "job_template": {"type": "a.b", "args": []}})
        assert response.status_code == 201, response.text
    first = (await client.get("/ojs/v1/cron?limit=2")).json()
    assert [c["name"] for c in first["crons"]] == names[:2]
    assert first["cron_jobs"] == first["crons"]
    assert first["pagination"]["total"] == 3
    assert first["pagination"]["has_more"] is True
    cursor = first["pagination"]["next_cursor"]
    second = (await client.get(f"/ojs/v1/cron?limit=2&cursor={cursor}")).json()
    assert [c["name"] for c in second["crons"]] == names[2:]
    assert second["pagination"]["has_more"] is False


@pytest.mark.parametrize("body", [
    {"name": "bad", "expression": "not a valid cron", "job_template": {"type": "a.b"}},
    {"name": "bad", "expression": "* * * * *", "timezone": "+05:00",
     "job_template": {"type": "a.b"}},
    {"name": "Bad Name", "expression": "* * * * *", "job_template": {"type": "a.b"}},
    {"name": "bad", "expression": "* * * * *", "job_template": {"type": "Not Valid"}},
    {"name": "bad", "expression": "* * * * *", "job_template": {"type": "a.b", "args": {}}},
    {"name": "bad", "expression": "* * * * *", "overlap_policy": "sometimes",
     "job_template": {"type": "a.b"}},
])
async def test_invalid_registrations_are_rejected_and_not_stored(client, body):
    response = await client.post("/ojs/v1/cron", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"]
    assert (await client.get("/ojs/v1/cron")).json()["crons"] == []


async def test_a_per_second_cron_enqueues_one_job_per_tick(client):
    await client.post("/ojs/v1/cron", json=every_second("ticker", "ticks", overlap_policy="allow"))
    await asyncio.sleep(3.4)
    await client.delete("/ojs/v1/cron/ticker")
    await asyncio.sleep(1.2)
    jobs = await jobs_in(client, "ticks")
    ticks = [j["meta"]["cron_triggered_at"] for j in jobs]
    assert 3 <= len(ticks) <= 4, ticks
    assert len(set(ticks)) == len(ticks)
    assert all(j["meta"]["cron_name"] == "ticker" for j in jobs)
    assert (await jobs_in(client, "ticks")) == []  # nothing after deletion
    events = (await client.get("/ojs/v1/events?types=cron.triggered&queues=ticks")).json()
    assert len(events["events"]) == len(ticks)
    data = events["events"][0]["data"]  # the required fields of ojs-events.md §4
    assert data["cron_name"] == "ticker"
    assert data["cron_expr"] == "* * * * * *"
    assert data["job_type"] == "cron.tick"
    assert data["job_id"] == jobs[0]["id"]
    assert data["scheduled_at"] == ticks[0]


async def test_skip_policy_does_not_enqueue_while_the_last_job_runs(client):
    await client.post("/ojs/v1/cron", json=every_second("skipper", "skip-q"))
    await asyncio.sleep(3.2)
    cron = (await client.get("/ojs/v1/cron/skipper")).json()["cron"]
    await client.delete("/ojs/v1/cron/skipper")
    jobs = await jobs_in(client, "skip-q")
    assert len(jobs) == 1  # the first job never finished, later ticks were skipped
    # Skipped ticks are not runs (ojs-cron.md §2.3).
    assert cron["run_count"] == 1
    assert cron["last_run_at"] == jobs[0]["meta"]["cron_triggered_at"]
    skipped = (await client.get("/ojs/v1/events?types=cron.skipped&queues=skip-q")).json()
    assert len(skipped["events"]) >= 1
    data = skipped["events"][0]["data"]
    assert data["reason"] == "overlap_skip"
    assert data["cron_expr"] == "* * * * * *"  # required by ojs-events.md §4
    assert data["job_type"] == "cron.tick"
    assert data["existing_job_id"] == jobs[0]["id"]


async def test_enqueue_policy_holds_the_next_job_until_the_previous_finishes(client):
    await client.post("/ojs/v1/cron", json=every_second("queued", "enq-q",
                                                        overlap_policy="enqueue"))
    deadline = time.monotonic() + 5
    first = []
    while not first and time.monotonic() < deadline:
        first = await jobs_in(client, "enq-q", 1)
        await asyncio.sleep(0.1)
    assert first, "no first job"
    await asyncio.sleep(1.5)
    await client.patch("/ojs/v1/cron/queued", json={"enabled": False})
    assert await jobs_in(client, "enq-q") == []  # the next one waits (pending)
    await client.post("/ojs/v1/workers/ack", json={"job_id": first[0]["id"]})
    released = []
    deadline = time.monotonic() + 3
    while not released and time.monotonic() < deadline:
        released = await jobs_in(client, "enq-q", 1)
        await asyncio.sleep(0.05)
    assert released, "the waiting job was not released when the previous one finished"
    assert released[0]["meta"]["cron_name"] == "queued"


async def test_cancel_previous_policy_cancels_the_running_job(client):
    await client.post("/ojs/v1/cron", json=every_second("replacer", "cp-q",
                                                        overlap_policy="cancel_previous"))
    deadline = time.monotonic() + 5
    first = []
    while not first and time.monotonic() < deadline:
        first = await jobs_in(client, "cp-q", 1)
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)
    await client.delete("/ojs/v1/cron/replacer")
    assert first
    state = (await client.get(f"/ojs/v1/jobs/{first[0]['id']}")).json()["job"]["state"]
    assert state == "cancelled"
