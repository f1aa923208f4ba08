"""Queue depth bounds with reject, block and drop_oldest (ojs-backpressure.md)."""

import asyncio

from tests.integration.test_bad_input import assert_ojs_error


def job(n, queue):
    return {"type": "bp.job", "args": [n], "options": {"queue": queue}}


async def bound(client, queue, depth, strategy, **extra):
    response = await client.put(f"/ojs/v1/queues/{queue}/config", json={
        "backpressure": {"max_depth": depth, "strategy": strategy, **extra}})
    assert response.status_code == 200, response.text


async def fetch(client, queue, count=1):
    body = (await client.post("/ojs/v1/workers/fetch",
                              json={"queues": [queue], "count": count})).json()
    return body["jobs"]


async def test_reject_is_429_queue_full_with_headers_and_stores_nothing(client):
    await bound(client, "rej-q", 2, "reject")
    for n in range(2):
        assert (await client.post("/ojs/v1/jobs", json=job(n, "rej-q"))).status_code == 201
    response = await client.post("/ojs/v1/jobs", json=job(2, "rej-q"))
    error = assert_ojs_error(response, 429, "QUEUE_FULL")
    assert error["retryable"] is True
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-ojs-queue-depth"] == "2"
    assert response.headers["x-ojs-queue-bound"] == "2"
    assert [j["args"][0] for j in await fetch(client, "rej-q", 5)] == [0, 1]
    events = (await client.get("/ojs/v1/events?queues=rej-q&types=backpressure.rejected")).json()
    assert len(events["events"]) == 1


async def test_active_jobs_do_not_count_towards_depth(client):
    await bound(client, "act-q", 1, "reject")
    await client.post("/ojs/v1/jobs", json=job(0, "act-q"))
    await fetch(client, "act-q")
    assert (await client.post("/ojs/v1/jobs", json=job(1, "act-q"))).status_code == 201


async def test_block_waits_for_room(client):
    await bound(client, "blk-q", 1, "block")
    await client.post("/ojs/v1/jobs", json=job(0, "blk-q"))
    blocked = asyncio.create_task(client.post("/ojs/v1/jobs", json=job(1, "blk-q"),
                                              headers={"OJS-Block-Timeout": "5"}))
    await asyncio.sleep(0.4)
    assert not blocked.done()
    await fetch(client, "blk-q")  # makes room
    response = await asyncio.wait_for(blocked, 3)
    assert response.status_code == 201, response.text


async def test_block_without_room_in_time_is_429(client):
    await bound(client, "blk2-q", 1, "block")
    await client.post("/ojs/v1/jobs", json=job(0, "blk2-q"))
    started = asyncio.get_running_loop().time()
    response = await client.post("/ojs/v1/jobs", json=job(1, "blk2-q"),
                                 headers={"OJS-Block-Timeout": "0.5"})
    assert_ojs_error(response, 429, "QUEUE_FULL")
    assert asyncio.get_running_loop().time() - started >= 0.5
    no_header = await client.post("/ojs/v1/jobs", json=job(2, "blk2-q"))
    assert_ojs_error(no_header, 429, "QUEUE_FULL")  # block timeout defaults to 0


async def test_drop_oldest_discards_the_oldest_available_job(client):
    await bound(client, "drop-q", 2, "drop_oldest")
    pushed = [(await client.post("/ojs/v1/jobs", json=job(n, "drop-q"))).json()["job"]
              for n in range(3)]
    oldest = (await client.get(f"/ojs/v1/jobs/{pushed[0]['id']}")).json()["job"]
    assert oldest["state"] == "discarded"
    assert oldest["error"]["code"] == "overflow"
    assert [j["args"][0] for j in await fetch(client, "drop-q", 5)] == [1, 2]
    events = (await client.get("/ojs/v1/events?queues=drop-q&types=backpressure.dropped")).json()
    assert [e["data"]["job_id"] for e in events["events"]] == [pushed[0]["id"]]


async def test_a_batch_that_does_not_fit_is_rejected_whole(client):
    await bound(client, "bb-q", 3, "reject")
    await client.post("/ojs/v1/jobs", json=job(0, "bb-q"))
    response = await client.post("/ojs/v1/jobs/batch",
                                 json={"jobs": [job(n, "bb-q") for n in range(1, 4)]})
    assert_ojs_error(response, 429, "QUEUE_FULL")
    assert len(await fetch(client, "bb-q", 10)) == 1


async def test_warning_headers_above_the_threshold(client):
    await bound(client, "warn-q", 4, "reject", warning_threshold=0.5)
    first = await client.post("/ojs/v1/jobs", json=job(0, "warn-q"))
    assert "x-ojs-queue-pressure" not in first.headers
    await client.post("/ojs/v1/jobs", json=job(1, "warn-q"))
    third = await client.post("/ojs/v1/jobs", json=job(2, "warn-q"))
    assert third.headers["x-ojs-queue-depth"] == "2"
    assert third.headers["x-ojs-queue-bound"] == "4"


async def test_bad_block_timeout_header_is_400_and_stores_nothing(client):
    for value in ("soon", "-1", "3600", "nan"):
        response = await client.post("/ojs/v1/jobs", json=job(0, "hdr-q"),
                                     headers={"OJS-Block-Timeout": value})
        assert_ojs_error(response, 400, "invalid_request")
    assert await fetch(client, "hdr-q") == []
