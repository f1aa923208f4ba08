"""The dead-letter queue (ojs-dead-letter.md): count retention with `dead_letter.pruned`
(§5, §8) and search by queue, type, error type and discard time (§9.1), paginated."""

import dataclasses

import pytest

from ojs_nats.model import ids
from tests.integration.test_bad_input import assert_ojs_error

MAX_COUNT = 3


@pytest.fixture
def settings(request, settings):
    if "search" in request.node.name:  # searches need more than MAX_COUNT entries
        return settings
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


async def test_search_by_type_error_type_and_queue_combines_the_filters(client):
    a = await bury(client, "sq-1", "email.send", "SmtpError")
    b = await bury(client, "sq-1", "email.digest", "DatabaseError")
    c = await bury(client, "sq-2", "email.send", "DatabaseError")
    d = await bury(client, "sq-2", "report.build", "SmtpError")
    assert await dead_ids(client, "type=email.send") == [a, c]
    assert await dead_ids(client, "type=email.*") == [a, b, c]
    assert await dead_ids(client, "error_type=DatabaseError") == [b, c]
    assert await dead_ids(client, "error_type=handler_error") == [a, b, c, d]  # the code
    assert await dead_ids(client, "queue=sq-2&error_type=SmtpError") == [d]
    assert await dead_ids(client, "type=email.*&error_type=SmtpError&queue=sq-1") == [a]
    assert await dead_ids(client, "type=nothing.here") == []
    body = (await client.get("/ojs/v1/dead-letter?type=email.*")).json()
    assert body["pagination"]["total"] == 3
    assert body["pagination"]["has_more"] is False


async def test_search_by_discard_time(client):
    first = await bury(client, "tq")
    between = ids.format_ts(ids.now_ms() + 1)
    while ids.format_ts(ids.now_ms()) <= between:  # the next discard lands after it
        pass
    second = await bury(client, "tq")
    assert await dead_ids(client, f"since={between}") == [second]
    assert await dead_ids(client, f"until={between}") == [first]
    assert await dead_ids(client, "since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00%2B02:00") \
        == [first, second]


async def test_search_pages_with_cursor_and_offset_without_repeats_or_gaps(client):
    wanted = []
    for n in range(7):
        job_id = await bury(client, "pq", "even.job" if n % 2 == 0 else "odd.job")
        if n % 2 == 0:
            wanted.append(job_id)
    seen, cursor = [], None
    while True:
        query = "type=even.job&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(f"/ojs/v1/dead-letter?{query}")).json()
        assert len(body["jobs"]) <= 2
        seen += [j["id"] for j in body["jobs"]]
        if not body["pagination"]["has_more"]:
            break
        cursor = body["pagination"]["next_cursor"]
        assert cursor
    assert seen == wanted
    assert await dead_ids(client, "type=even.job&offset=1&limit=2") == wanted[1:3]
    assert await dead_ids(client, "type=even.job&offset=3") == wanted[3:]


@pytest.mark.parametrize(("query", "field"), [
    ("since=yesterday", "since"),
    ("until=2026-02-13T10:00:00", "until"),  # no time zone
    ("type=a.b&cursor=abc", "cursor"),
    ("type=a.b&limit=x", "limit"),
    ("error_type=E&offset=-1", "offset"),
])
async def test_bad_search_parameters_are_400_invalid_request_and_change_nothing(
        client, query, field):
    job_id = await bury(client, "bad-q")
    error = assert_ojs_error(await client.get(f"/ojs/v1/dead-letter?{query}"), 400,
                             "invalid_request")
    assert field in error["message"]
    assert await dead_ids(client) == [job_id]
