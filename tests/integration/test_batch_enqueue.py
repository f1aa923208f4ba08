"""Batch enqueue (POST /jobs/batch all-or-nothing, POST /jobs/bulk atomic or partial)."""

import pytest

from tests.integration.test_bad_input import assert_ojs_error


def job(n, queue="bq", **options):
    return {"type": "b.job", "args": [n], "options": {"queue": queue, **options}}


async def stats(client, queue):
    return (await client.get(f"/ojs/v1/queues/{queue}/stats")).json()["queue"]


async def fetch_all(client, queue):
    fetched = await client.post("/ojs/v1/workers/fetch", json={"queues": [queue], "count": 1000})
    return fetched.json()["jobs"]


async def test_a_thousand_jobs_in_one_request_are_fetched_in_order(client):
    response = await client.post("/ojs/v1/jobs/batch",
                                 json={"jobs": [job(n) for n in range(1000)]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 1000
    assert [j["args"][0] for j in body["jobs"]] == list(range(1000))
    assert (await stats(client, "bq"))["available"] == 1000
    fetched = await fetch_all(client, "bq")
    assert [j["args"][0] for j in fetched] == list(range(1000))
    events = (await client.get("/ojs/v1/events?queues=bq&types=job.enqueued&limit=1000")).json()
    assert len(events["events"]) == 1000


async def test_mixed_queues_priorities_and_schedules(client):
    jobs = [job(1, "bq-a", priority=5), job(2, "bq-b"), job(3, "bq-a", priority=-5),
            job(4, "bq-a", delay_until="2099-01-01T00:00:00Z")]
    body = (await client.post("/ojs/v1/jobs/batch", json={"jobs": jobs})).json()
    assert [j["state"] for j in body["jobs"]] == ["available"] * 3 + ["scheduled"]
    assert [j["args"][0] for j in await fetch_all(client, "bq-a")] == [1, 3]
    assert (await stats(client, "bq-a"))["scheduled"] == 1
    assert [j["args"][0] for j in await fetch_all(client, "bq-b")] == [2]


@pytest.mark.parametrize(("bad", "status", "code"), [
    ({"args": [1], "options": {"queue": "bq"}}, 400, "invalid_request"),
    ({"type": "b.job", "args": [1], "options": {"queue": "bq", "retry": {"max_attempts": -1}}},
     422, "validation_error"),
    ({"type": "b.job", "args": [1], "options": {"queue": "bq", "unique": {"keys": ["meta"]}}},
     400, "invalid_request"),
    ("not a job", 400, "invalid_request"),
])
async def test_one_invalid_job_rejects_the_whole_batch(client, bad, status, code):
    jobs = [job(0), job(1), bad, job(3)]
    error = assert_ojs_error(await client.post("/ojs/v1/jobs/batch", json={"jobs": jobs}),
                             status, code)
    assert error["details"]["index"] == 2
    assert "index 2" in error["message"]
    assert await fetch_all(client, "bq") == []


async def test_a_taken_id_rejects_the_whole_batch(client):
    first = (await client.post("/ojs/v1/jobs", json=job(0))).json()["job"]
    jobs = [job(1), {**job(2), "id": first["id"]}]
    error = assert_ojs_error(await client.post("/ojs/v1/jobs/batch", json={"jobs": jobs}),
                             409, "duplicate")
    assert error["details"]["index"] == 1
    assert [j["id"] for j in await fetch_all(client, "bq")] == [first["id"]]


async def test_the_same_id_twice_in_a_batch_is_400(client):
    jobs = [{**job(1), "id": "019a0000-0000-7000-8000-000000000001"},
            {**job(2), "id": "019a0000-0000-7000-8000-000000000001"}]
    assert_ojs_error(await client.post("/ojs/v1/jobs/batch", json={"jobs": jobs}), 400)
    assert await fetch_all(client, "bq") == []


@pytest.mark.parametrize("payload", [{}, {"jobs": []}, {"jobs": {"a": 1}}, {"jobs": "x"}])
async def test_missing_or_empty_jobs_is_400(client, payload):
    assert_ojs_error(await client.post("/ojs/v1/jobs/batch", json=payload), 400,
                     "invalid_request")


async def test_more_than_the_maximum_is_413_and_stores_nothing(client):
    response = await client.post("/ojs/v1/jobs/batch",
                                 json={"jobs": [job(n) for n in range(1001)]})
    error = assert_ojs_error(response, 413, "batch_size_exceeded")
    assert error["details"]["max_batch_size"] == 1000
    assert await fetch_all(client, "bq") == []


async def test_unique_jobs_in_a_batch(client):
    unique = {"unique": {"keys": ["type", "args"], "on_conflict": "ignore"}}
    existing = (await client.post("/ojs/v1/jobs", json=job(7, **unique))).json()["job"]
    jobs = [job(1, **unique), job(7, **unique), job(1, **unique)]
    response = await client.post("/ojs/v1/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 1
    assert body["deduplicated"] == [1, 2]
    assert body["jobs"][1]["id"] == existing["id"]
    assert body["jobs"][2]["id"] == body["jobs"][0]["id"]
    rejecting = {"unique": {"keys": ["type", "args"]}}
    assert_ojs_error(await client.post("/ojs/v1/jobs/batch",
                                       json={"jobs": [job(8, **rejecting), job(7, **rejecting)]}),
                     409, "duplicate")
    assert len(await fetch_all(client, "bq")) == 2  # 7 and 1; 8 was rolled back
    assert (await client.post("/ojs/v1/jobs", json=job(8, **rejecting))).status_code == 201


async def test_bulk_partial_mode_reports_each_job(client):
    jobs = [job(0), {"args": []}, job(2)]
    response = await client.post("/ojs/v1/jobs/bulk", json={"jobs": jobs,
                                                             "atomicity": "partial"})
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["total"], body["succeeded"], body["failed"]) == (3, 2, 1)
    assert [i["status"] for i in body["items"]] == ["created", "failed", "created"]
    assert body["items"][1]["error"]["code"] == "invalid_request"
    assert [j["args"][0] for j in await fetch_all(client, "bq")] == [0, 2]


async def test_bulk_atomic_mode_rolls_back_and_names_the_culprit(client):
    response = await client.post("/ojs/v1/jobs/bulk", json={
        "jobs": [job(0), {"args": []}], "atomicity": "atomic"})
    assert response.status_code == 422, response.text
    items = response.json()["items"]
    assert items[0]["error"]["code"] == "rolled_back"
    assert items[1]["error"]["code"] == "invalid_request"
    assert await fetch_all(client, "bq") == []


async def test_bulk_all_created_is_201_and_all_failed_is_422(client):
    ok = await client.post("/ojs/v1/jobs/bulk", json={"jobs": [job(0)]})
    assert ok.status_code == 201
    bad = await client.post("/ojs/v1/jobs/bulk", json={"jobs": [{"args": []}]})
    assert bad.status_code == 422


@pytest.mark.parametrize("payload", [{"jobs": [job(0)], "atomicity": "sometimes"},
                                     {"jobs": [job(0)], "idempotency_key": "k"}])
async def test_bulk_bad_options_are_refused_and_store_nothing(client, payload):
    response = await client.post("/ojs/v1/jobs/bulk", json=payload)
    assert response.status_code in (400, 422)
    assert response.json()["error"]["message"]
    assert await fetch_all(client, "bq") == []
