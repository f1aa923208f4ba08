"""The dead-letter queue (ojs-dead-letter.md): count retention with `dead_letter.pruned`
(§5, §8) and search by queue, type, error type and discard time (§9.1), paginated."""

import dataclasses

import pytest

MAX_COUNT = 3


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, dead_letter_max_count=MAX_COUNT)


async def bury(client, queue, job_type="a.b", error_type="Boom"):
    """Push a job, fetch it and fail it into the dead-letter queue; returns its id."""
    body = {"type": job_type, "args": [], "options": {
        "queue": queue, "retry": {"max_attempts": 1, "on_exhaustion": "dead_letter"}}}
    job = (await client.post("/ojs/v1/jobs", json=body)).json()["job"]
    fetched = await client.post("/ojs/v1/workers/fetch", json={"queues": [queue]})
    assert [j["id"] for j in fetched.json()["jobs"]] == [job["id"]]
    nack = await client.post("/ojs/v1/workers/nack", json={"job_id": job["id"], "error": {
        "code": "handler_error", "type": error_type, "message": "failed"}})
    assert nack.json()["state"] == "discarded", nack.text
    return job["id"]


async def dead_ids(client, query=""):
    response = await client.get(f"/ojs/v1/dead-letter?{query}")
    assert response.status_code == 200, response.text
    return [j["id"] for j in response.json()["jobs"]]


async def test_beyond_max_count_the_oldest_are_pruned_with_an_event(client):
    buried = [await bury(client, q) for q in ("dq-a", "dq-b", "dq-a", "dq-b", "dq-a")]
    assert await dead_ids(client) == buried[2:]
    for job_id in buried[:2]:
        assert (await client.get(f"/ojs/v1/jobs/{job_id}")).status_code == 404
        assert (await client.post(f"/ojs/v1/dead-letter/{job_id}/retry")).status_code == 404
    body = (await client.get("/ojs/v1/events?types=dead_letter.pruned")).json()
    pruned = {e["data"]["queue"]: e["data"] for e in body["events"]}
    assert {q: d["job_ids"] for q, d in pruned.items()} == {
        "dq-a": [buried[0]], "dq-b": [buried[1]]}
    assert all(d["count"] == 1 and d["max_count"] == MAX_COUNT for d in pruned.values())
    assert all(e["subject"] == e["data"]["queue"] for e in body["events"])


async def test_a_retried_dead_letter_leaves_room_and_is_never_pruned(client):
    buried = [await bury(client, "dq-r") for _ in range(MAX_COUNT)]
    retried = await client.post(f"/ojs/v1/dead-letter/{buried[0]}/retry")
    assert retried.status_code == 200, retried.text
    newest = await bury(client, "dq-other")
    assert await dead_ids(client) == [*buried[1:], newest]
    assert (await client.get(f"/ojs/v1/jobs/{buried[0]}")).json()["job"]["state"] == "available"
    body = (await client.get("/ojs/v1/events?types=dead_letter.pruned")).json()
    assert body["events"] == []
