"""Progress reporting over HTTP (ojs-progress.md §6-§8, §10), on a real nats-server."""

import asyncio

UNKNOWN = "01a20978-26d0-71ed-b72e-45ec39adfb63"


async def active_job(client, queue, **options):
    pushed = await client.post("/ojs/v1/jobs", json={
        "type": "a.b", "args": [], "options": {"queue": queue, **options}})
    job_id = pushed.json()["job"]["id"]
    fetched = (await client.post("/ojs/v1/workers/fetch",
                                 json={"queues": [queue], "worker_id": "w1"})).json()["jobs"]
    assert [j["id"] for j in fetched] == [job_id]
    return job_id


async def put(client, job_id, body):
    return await client.put(f"/ojs/v1/jobs/{job_id}/progress", json=body)


async def test_progress_is_reported_read_back_and_never_goes_down(client):
    job_id = await active_job(client, "progress")
    empty = (await client.get(f"/ojs/v1/jobs/{job_id}/progress")).json()
    assert (empty["progress"], empty["data"], empty["state"]) == (None, None, "active")

    first = await put(client, job_id, {"progress": 0.3, "data": {"rows": 30}})
    assert first.status_code == 200
    assert first.headers["x-ojs-progress"] == "0.3"
    await put(client, job_id, {"progress": 0.1, "data": {"rows": 31}})
    read = await client.get(f"/ojs/v1/jobs/{job_id}/progress")
    assert read.json()["progress"] == 0.3
    assert read.json()["data"] == {"rows": 31}
    assert read.headers["cache-control"] == "no-cache"

    await client.post("/ojs/v1/workers/ack", json={"job_id": job_id})
    done = (await client.get(f"/ojs/v1/jobs/{job_id}/progress")).json()
    assert (done["state"], done["progress"]) == ("completed", 1.0)
    late = await put(client, job_id, {"progress": 0.5})  # silently ignored (§6.1)
    assert late.status_code == 200
    assert late.json()["progress"] == 1.0
    assert "progress" not in (await client.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]


async def test_a_progress_report_extends_the_lease_like_a_heartbeat(client):
    job_id = await active_job(client, "progress-lease", visibility_timeout_ms=1500)
    for _ in range(3):
        await asyncio.sleep(0.9)
        assert (await put(client, job_id, {"progress": 0.5})).status_code == 200
    # 2.7 s after the fetch, past the 1.5 s lease: still the worker's.
    assert (await client.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]["state"] == "active"


async def test_bad_reports_and_unknown_jobs(client):
    job_id = await active_job(client, "progress-bad")
    bad = await put(client, job_id, {"progress": "most"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_request")
    assert (await put(client, job_id, {})).status_code == 400
    assert (await put(client, UNKNOWN, {"progress": 0.5})).status_code == 404
    assert (await client.get(f"/ojs/v1/jobs/{UNKNOWN}/progress")).status_code == 404
    assert (await client.get("/ojs/v1/jobs/not-an-id/progress")).status_code == 404
