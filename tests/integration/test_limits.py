"""Rate and concurrency limits at FETCH, queue-level and job-level, on a real nats-server."""

import asyncio

import orjson

from ojs_nats.model import ids
from tests.integration.test_bad_input import assert_ojs_error


async def push(client, queue, n=0, **options):
    response = await client.post("/ojs/v1/jobs", json={"type": "l.job", "args": [n],
                                                        "options": {"queue": queue, **options}})
    assert response.status_code == 201, response.text
    return response.json()["job"]


async def fetch(client, *queues, count=1):
    response = await client.post("/ojs/v1/workers/fetch",
                                 json={"queues": list(queues), "count": count})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


async def configure(client, queue, **config):
    response = await client.put(f"/ojs/v1/queues/{queue}/config", json=config)
    assert response.status_code == 200, response.text


async def active_slots(client, queue):
    stats = (await client.get(f"/ojs/v1/queues/{queue}/stats")).json()["queue"]
    return stats["limits"]["concurrency"]["active"]


async def test_queue_concurrency_caps_active_jobs_and_frees_on_every_exit(client):
    await configure(client, "conc-q", concurrency=2)
    for n in range(6):
        await push(client, "conc-q", n, retry={"max_attempts": 3, "initial_interval": "PT60S"})
    first = await fetch(client, "conc-q", count=6)
    assert [j["args"][0] for j in first] == [0, 1]
    assert await fetch(client, "conc-q", count=6) == []
    assert await active_slots(client, "conc-q") == 2
    await client.post("/ojs/v1/workers/ack", json={"job_id": first[0]["id"]})  # exit: ack
    [second] = await fetch(client, "conc-q", count=6)
    await client.post("/ojs/v1/workers/nack", json={"job_id": first[1]["id"],  # exit: nack
                                                      "error": {"message": "x"}})
    [third] = await fetch(client, "conc-q", count=6)
    await client.delete(f"/ojs/v1/jobs/{second['id']}")  # exit: cancel
    [fourth] = await fetch(client, "conc-q", count=6)
    assert [j["args"][0] for j in (second, third, fourth)] == [2, 3, 4]
    assert await fetch(client, "conc-q") == []
    assert await active_slots(client, "conc-q") == 2


async def test_lease_expiry_frees_the_slot(client):
    await configure(client, "lease-q", concurrency=1)
    await push(client, "lease-q", 0, visibility_timeout_ms=300)
    await push(client, "lease-q", 1)
    [held] = await fetch(client, "lease-q")
    assert await fetch(client, "lease-q") == []
    await asyncio.sleep(0.8)  # the lease runs out: the job is available again, its slot free
    state = (await client.get(f"/ojs/v1/jobs/{held['id']}")).json()["job"]["state"]
    assert state == "available"
    assert len(await fetch(client, "lease-q")) == 1


async def test_a_slot_leaked_by_a_crash_is_reclaimed(client):
    await configure(client, "leak-q", concurrency=1)
    storage = client.app.state.ctx.storage
    long_ago = ids.now_ms() - 120_000
    ghost = {"job": ids.uuid7(), "step": 2, "at": long_ago}  # a claim that never happened
    subject = storage.names.slot_subject("q_leak-q", 0)
    await storage.conn.store(subject, orjson.dumps(ghost))
    await push(client, "leak-q")
    assert len(await fetch(client, "leak-q")) == 1


async def test_a_recent_slot_without_its_job_counts_as_a_claim_in_flight(client):
    await configure(client, "flight-q", concurrency=1)
    storage = client.app.state.ctx.storage
    claim = {"job": ids.uuid7(), "step": 2, "at": ids.now_ms()}
    await storage.conn.store(storage.names.slot_subject("q_flight-q", 0), orjson.dumps(claim))
    await push(client, "flight-q")
    assert await fetch(client, "flight-q") == []


async def test_queue_rate_limit_bursts_to_its_limit_then_spaces_starts(client):
    await configure(client, "rate-q", rate_limit={"limit": 5, "period": "PT1S"})
    for n in range(10):
        await push(client, "rate-q", n)
    assert len(await fetch(client, "rate-q", count=10)) == 5
    assert await fetch(client, "rate-q", count=10) == []
    await asyncio.sleep(0.45)  # 200 ms per start
    assert len(await fetch(client, "rate-q", count=10)) == 2


async def test_queue_throttle_allows_no_burst(client):
    await configure(client, "thr-q", throttle={"limit": 2, "period": "PT1S"})
    for n in range(5):
        await push(client, "thr-q", n)
    assert len(await fetch(client, "thr-q", count=5)) == 1
    await asyncio.sleep(0.55)
    assert len(await fetch(client, "thr-q", count=5)) == 1


async def test_a_limited_queue_does_not_hold_up_the_next_queue(client):
    await configure(client, "full-q", concurrency=0)
    await push(client, "full-q")
    other = await push(client, "free-q")
    got = await fetch(client, "full-q", "free-q", count=2)
    assert [j["id"] for j in got] == [other["id"]]


async def test_job_limit_with_a_key_is_shared_across_queues(client):
    limit = {"key": "partner-api", "concurrency": 1}
    await push(client, "ka-q", 0, rate_limit=limit)
    await push(client, "kb-q", 1, rate_limit=limit)
    plain = await push(client, "kb-q", 2)
    [running] = await fetch(client, "ka-q")
    got = await fetch(client, "kb-q", count=2)
    assert [j["id"] for j in got] == [plain["id"]]  # the limited one is skipped, not blocking
    await client.post("/ojs/v1/workers/ack", json={"job_id": running["id"]})
    await asyncio.sleep(0.3)
    assert [j["args"][0] for j in await fetch(client, "kb-q")] == [1]


async def test_job_limit_drop_discards_what_cannot_start(client):
    limit = {"rate": {"limit": 1, "period": "PT10S"}, "on_limit": "drop"}
    await push(client, "drop-q", 0, rate_limit=limit)
    dropped = await push(client, "drop-q", 1, rate_limit=limit)
    assert len(await fetch(client, "drop-q", count=2)) == 1
    job = (await client.get(f"/ojs/v1/jobs/{dropped['id']}")).json()["job"]
    assert job["state"] == "discarded"
    assert job["error"]["code"] == "rate_limited"


async def test_invalid_job_rate_limit_is_400_and_stores_nothing(client):
    response = await client.post("/ojs/v1/jobs", json={
        "type": "l.job", "args": [], "options": {"queue": "bad-l",
                                                  "rate_limit": {"max_per_second": 0}}})
    assert_ojs_error(response, 400, "invalid_request")
    assert await fetch(client, "bad-l") == []


async def test_jobs_waiting_for_their_limit_do_not_hide_the_jobs_behind_them(client):
    limit = {"key": "slow-api", "max_per_second": 1}
    for n in range(10):
        await push(client, "mix-q", n, rate_limit=limit)
    free = await push(client, "mix-q", 99)
    got = await fetch(client, "mix-q", count=3)
    assert [j["args"][0] for j in got] == [0, 99]
    assert got[1]["id"] == free["id"]


async def test_weighted_fetch_reaches_every_queue_and_bad_weights_claim_nothing(client):
    for n in range(20):
        await push(client, "wa-q", n)
        await push(client, "wb-q", n)
    served = set()
    for _ in range(20):
        response = await client.post("/ojs/v1/workers/fetch", json={
            "queues": ["wa-q", "wb-q"], "strategy": "weighted", "weights": {"wa-q": 1, "wb-q": 1}})
        served.add(response.json()["jobs"][0]["queue"])
    assert served == {"wa-q", "wb-q"}
    bad = await client.post("/ojs/v1/workers/fetch", json={
        "queues": ["wa-q"], "strategy": "weighted", "weights": {"wa-q": -1}})
    assert_ojs_error(bad, 400, "invalid_request")
    stats = (await client.get("/ojs/v1/queues/wa-q/stats")).json()["queue"]
    assert stats["active"] + stats["available"] == 20
