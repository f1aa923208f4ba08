"""Unique jobs through the HTTP API: every conflict resolution, scope and dimension."""

import asyncio

import pytest

from tests.integration.test_bad_input import assert_ojs_error


def body(args, queue="uq", **unique):
    return {"type": "u.job", "args": args, "options": {"queue": queue, "unique": unique}}


async def push(client, args, queue="uq", status=201, **unique):
    response = await client.post("/ojs/v1/jobs", json=body(args, queue, **unique))
    assert response.status_code == status, response.text
    return response.json()


async def state(client, job_id):
    return (await client.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]["state"]


async def work(client, queue, outcome="ack"):
    [job] = (await client.post("/ojs/v1/workers/fetch", json={"queues": [queue]})).json()["jobs"]
    if outcome == "ack":
        await client.post("/ojs/v1/workers/ack", json={"job_id": job["id"]})
    return job


async def test_reject_names_the_existing_job(client):
    first = (await push(client, [1], keys=["type", "args"]))["job"]
    error = (await push(client, [1], status=409, keys=["type", "args"]))["error"]
    assert error["code"] == "duplicate"
    assert error["details"]["existing_job_id"] == first["id"]
    assert error["details"]["existing_job_state"] == "available"
    await push(client, [2], keys=["type", "args"])  # other args: another key


async def test_default_key_is_the_type_alone(client):
    await push(client, [1], queue="a-q")
    await push(client, [2], queue="b-q", status=409)


async def test_queue_dimension_scopes_the_key_to_a_queue(client):
    await push(client, [1], queue="a-q", keys=["type", "queue"])
    await push(client, [1], queue="b-q", keys=["type", "queue"])
    await push(client, [1], queue="a-q", status=409, keys=["type", "queue"])


async def test_meta_keys_dimension(client):
    def with_meta(tenant, trace):
        b = body([1], keys=["meta"], meta_keys=["tenant"])
        b["meta"] = {"tenant": tenant, "trace": trace}
        return b
    assert (await client.post("/ojs/v1/jobs", json=with_meta("acme", "1"))).status_code == 201
    assert (await client.post("/ojs/v1/jobs", json=with_meta("acme", "2"))).status_code == 409
    assert (await client.post("/ojs/v1/jobs", json=with_meta("globex", "3"))).status_code == 201


async def test_ignore_answers_200_with_the_existing_job(client):
    first = (await push(client, [1], on_conflict="ignore"))["job"]
    again = await push(client, [1], status=200, on_conflict="ignore")
    assert again["job"]["id"] == first["id"]
    assert again["deduplicated"] is True


async def test_replace_cancels_the_old_job_even_when_active(client):
    old = (await push(client, [1], on_conflict="replace"))["job"]
    await work(client, "uq", outcome=None)
    assert await state(client, old["id"]) == "active"
    new = (await push(client, [2], on_conflict="replace"))["job"]
    assert new["id"] != old["id"]
    assert await state(client, old["id"]) == "cancelled"
    assert await state(client, new["id"]) == "available"
    assert_ojs_error(await client.post("/ojs/v1/workers/ack", json={"job_id": old["id"]}), 409)


async def test_replace_except_schedule_keeps_the_old_run_time(client):
    b = body([1], on_conflict="replace_except_schedule")
    b["options"]["delay_until"] = "2099-01-01T00:00:00Z"
    old = (await client.post("/ojs/v1/jobs", json=b)).json()["job"]
    b = body([2], on_conflict="replace_except_schedule")
    b["options"]["delay_until"] = "2099-06-01T00:00:00Z"
    new = (await client.post("/ojs/v1/jobs", json=b)).json()["job"]
    assert new["scheduled_at"] == "2099-01-01T00:00:00Z"
    assert new["state"] == "scheduled"
    assert await state(client, old["id"]) == "cancelled"


async def test_period_ends_the_key_regardless_of_state(client):
    await push(client, [1], period="PT1S")
    await push(client, [1], status=409, period="PT1S")
    await asyncio.sleep(1.2)
    await push(client, [1], period="PT1S")


async def test_finished_jobs_release_the_key_unless_their_state_is_listed(client):
    await push(client, [1], keys=["type", "args"])
    await work(client, "uq")
    await push(client, [1], keys=["type", "args"])  # completed is not a default state
    listed = {"keys": ["type", "args"], "states": ["available", "completed"]}
    await push(client, [2], queue="uq2", **listed)
    await work(client, "uq2")
    error = (await push(client, [2], queue="uq2", status=409, **listed))["error"]
    assert error["details"]["existing_job_state"] == "completed"


async def test_narrow_states_let_a_duplicate_in_once_the_job_runs(client):
    first = (await push(client, [1], states=["available"]))["job"]
    await work(client, "uq", outcome=None)
    second = (await push(client, [1], states=["available"]))["job"]
    assert second["id"] != first["id"]


async def test_retryable_job_still_holds_its_key(client):
    b = body([1])
    b["options"]["retry"] = {"max_attempts": 3, "initial_interval": "PT60S"}
    await client.post("/ojs/v1/jobs", json=b)
    job = await work(client, "uq", outcome=None)
    await client.post("/ojs/v1/workers/nack", json={"job_id": job["id"],
                                                      "error": {"message": "x"}})
    assert await state(client, job["id"]) == "retryable"
    await push(client, [1], status=409)


async def test_cancelling_the_holder_frees_the_key_for_the_next_job(client):
    first = (await push(client, [1]))["job"]
    await client.delete(f"/ojs/v1/jobs/{first['id']}")
    await push(client, [1])


async def test_lock_is_deleted_when_its_job_finishes_out_of_scope(client):
    await push(client, [1])
    await work(client, "uq")
    await asyncio.sleep(0.05)
    storage = client.app.state.ctx.storage
    msgs = await storage.batches.get_many(f"KV_{storage.names.unique_bucket}",
                                          f"$KV.{storage.names.unique_bucket}.>", 1, 10)
    assert all((m.headers or {}).get("KV-Operation") == "DEL" for m in msgs)


@pytest.mark.parametrize("unique", [
    {"keys": ["meta"]}, {"on_conflict": "merge"}, {"states": ["done"]}, {"period": "soon"},
    {"keys": ["args"], "args_keys": ["missing"]},
])
async def test_invalid_policies_are_400_and_store_nothing(client, unique):
    response = await client.post("/ojs/v1/jobs", json={
        "type": "u.job", "args": [{"user_id": 1}], "options": {"queue": "bad-u", "unique": unique}})
    assert_ojs_error(response, 400, "invalid_request")
    fetched = await client.post("/ojs/v1/workers/fetch", json={"queues": ["bad-u"]})
    assert fetched.json()["jobs"] == []


async def test_concurrent_duplicates_create_exactly_one_job(client):
    responses = await asyncio.gather(*(
        client.post("/ojs/v1/jobs", json=body([1], queue="race-q")) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    fetched = await client.post("/ojs/v1/workers/fetch", json={"queues": ["race-q"],
                                                                "count": 50})
    assert len(fetched.json()["jobs"]) == 1


async def test_concurrent_ignores_all_answer_with_the_one_job(client):
    responses = await asyncio.gather(*(
        client.post("/ojs/v1/jobs", json=body([1], queue="race-i", on_conflict="ignore"))
        for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["job"]["id"] for r in responses}) == 1


async def test_concurrent_replaces_leave_exactly_one_live_job(client):
    responses = await asyncio.gather(*(
        client.post("/ojs/v1/jobs", json=body([n], queue="race-r", on_conflict="replace"))
        for n in range(8)))
    created = [r.json()["job"]["id"] for r in responses if r.status_code == 201]
    states = [await state(client, job_id) for job_id in created]
    assert states.count("available") == 1
    assert set(states) <= {"available", "cancelled"}
