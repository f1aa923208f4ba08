"""Bad input gets the OJS error shape with the right status, and changes nothing."""

import pytest

JSON = {"content-type": "application/openjobspec+json"}


def assert_ojs_error(response, status, code=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/openjobspec+json"
    assert response.headers["ojs-version"] == "1.0"
    error = response.json()["error"]
    assert error["message"]
    assert isinstance(error["retryable"], bool)
    assert error["request_id"] == response.headers["x-request-id"]
    if code:
        assert error["code"] == code
    return error


async def queue_is_empty(client, queue):
    fetched = await client.post("/ojs/v1/workers/fetch", json={"queues": [queue], "count": 10})
    return fetched.json()["jobs"] == []


async def test_malformed_json_is_400_invalid_payload_and_stores_nothing(client):
    response = await client.post("/ojs/v1/jobs", content=b'{"type": "a.b", "args": [',
                                 headers=JSON)
    assert_ojs_error(response, 400, "invalid_payload")
    assert await queue_is_empty(client, "default")


async def test_empty_body_is_400_invalid_payload(client):
    assert_ojs_error(await client.post("/ojs/v1/jobs", headers=JSON), 400, "invalid_payload")


async def test_wrong_content_type_is_400_invalid_request(client):
    # HTTP binding §4.1: unsupported content types are rejected with 400 Bad Request.
    response = await client.post("/ojs/v1/jobs", content=b"type=a.b&args=1",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    error = assert_ojs_error(response, 400, "invalid_request")
    assert error["details"]["content_type"] == "application/x-www-form-urlencoded"
    assert await queue_is_empty(client, "default")


async def test_body_over_the_limit_is_413_and_stores_nothing(client):
    limit = client.app.state.settings.max_body_bytes
    big = {"type": "a.b", "args": ["x" * (limit + 10)], "options": {"queue": "big"}}
    assert_ojs_error(await client.post("/ojs/v1/jobs", json=big), 413, "payload_too_large")
    assert await queue_is_empty(client, "big")


@pytest.mark.parametrize(("body", "status"), [
    ({"args": [], "options": {"queue": "bad"}}, 400),
    ({"type": 12, "args": [], "options": {"queue": "bad"}}, 400),
    ({"type": "a.b", "args": {"x": 1}, "options": {"queue": "bad"}}, 400),
    ({"type": "a.b", "args": [], "options": {"queue": "bad", "priority": "high"}}, 400),
    ({"type": "a.b", "args": [], "options": {"queue": "bad", "retry": {"max_attempts": -1}}},
     422),
    ([1, 2, 3], 400),
])
async def test_wrong_field_types_are_rejected_and_store_nothing(client, body, status):
    assert_ojs_error(await client.post("/ojs/v1/jobs", json=body), status)
    assert await queue_is_empty(client, "bad")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/ojs/v1/jobs/01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6", None),
    ("DELETE", "/ojs/v1/jobs/01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6", None),
    ("GET", "/ojs/v1/jobs/../../etc", None),
    ("GET", "/ojs/v1/jobs/*", None),
    ("POST", "/ojs/v1/workers/ack", {"job_id": "01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6"}),
    ("POST", "/ojs/v1/workers/nack", {"job_id": "01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6"}),
    ("POST", "/ojs/v1/dead-letter/01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6/retry", None),
    ("DELETE", "/ojs/v1/dead-letter/01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6", None),
    ("GET", "/ojs/v1/no-such-resource", None),
])
async def test_unknown_ids_and_paths_are_404(client, method, path, body):
    response = await client.request(method, path, json=body)
    error = assert_ojs_error(response, 404, "not_found")
    assert error["hint"]
    assert error["docs_url"]


async def test_illegal_transitions_are_409_and_change_nothing(client):
    job = (await client.post("/ojs/v1/jobs", json={"type": "a.b", "args": [],
                                                   "options": {"queue": "illegal"}})).json()["job"]
    before = (await client.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"]
    for path in ("/ojs/v1/workers/ack", "/ojs/v1/workers/nack"):
        assert_ojs_error(await client.post(path, json={"job_id": job["id"]}), 409, "conflict")
    assert (await client.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"] == before

    assert (await client.delete(f"/ojs/v1/jobs/{job['id']}")).status_code == 200
    cancelled = (await client.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"]
    for method, path in (("DELETE", f"/ojs/v1/jobs/{job['id']}"),
                         ("POST", "/ojs/v1/workers/ack"), ("POST", "/ojs/v1/workers/nack")):
        body = None if method == "DELETE" else {"job_id": job["id"]}
        assert_ojs_error(await client.request(method, path, json=body), 409, "conflict")
    assert (await client.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"] == cancelled


async def test_duplicate_client_id_is_409_duplicate_and_keeps_the_original(client):
    body = {"id": "01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6", "type": "a.first", "args": [],
            "options": {"queue": "dup"}}
    assert (await client.post("/ojs/v1/jobs", json=body)).status_code == 201
    second = await client.post("/ojs/v1/jobs", json={**body, "type": "a.second"})
    assert_ojs_error(second, 409, "duplicate")
    stored = (await client.get(f"/ojs/v1/jobs/{body['id']}")).json()["job"]
    assert stored["type"] == "a.first"
    fetched = (await client.post("/ojs/v1/workers/fetch",
                                 json={"queues": ["dup"], "count": 5})).json()["jobs"]
    assert [j["id"] for j in fetched] == [body["id"]]  # one job, one entry


@pytest.mark.parametrize("body", [
    {"queues": "default"}, {"queues": []}, {"queues": ["Bad Queue"]},
    {"queues": ["default"], "count": 0}, {"queues": ["default"], "count": "5"},
])
async def test_bad_fetch_requests_are_400(client, body):
    assert_ojs_error(await client.post("/ojs/v1/workers/fetch", json=body), 400)


async def test_wrong_method_is_405_in_ojs_shape(client):
    # HTTP binding §16.3: only standard (or `x_`) error codes; a wrong method is a malformed
    # HTTP request.
    assert_ojs_error(await client.put("/ojs/v1/jobs"), 405, "invalid_request")


async def test_test_reset_is_absent_unless_enabled(nats_server):
    import httpx

    from ojs_nats.api.app import create_app
    from ojs_nats.config import Settings
    from tests.support import namespace

    app = create_app(Settings(nats_urls=(nats_server.url,), namespace=namespace()))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://gateway") as http:
        assert_ojs_error(await http.post("/ojs/v1/admin/reset"), 404, "not_found")


@pytest.mark.parametrize(("method", "path", "target"), [
    ("GET", "/ojs/v1/jobs/01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6", "ojs_nats.service.info.info"),
    ("POST", "/ojs/v1/workers/ack", "ojs_nats.service.ack.ack"),  # served by the fast path
])
async def test_unexpected_errors_are_500_in_ojs_shape_without_internals(
        client, monkeypatch, method, path, target):
    async def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    module, _, name = target.rpartition(".")
    monkeypatch.setattr(__import__(module, fromlist=[name]), name, broken)
    body = {"job_id": "01941ad4-8b2e-7c3a-b5d1-f0e2a3b4c5d6"} if method == "POST" else None
    response = await client.request(method, path, json=body,
                                    headers={"x-request-id": "req-500"})
    error = assert_ojs_error(response, 500, "internal_error")
    assert "secret" not in response.text
    assert error["request_id"] == "req-500"


@pytest.mark.parametrize("version", ["2.0", "1.1", "0.9", "banana"])
async def test_unsupported_ojs_version_is_422_unsupported_and_stores_nothing(client, version):
    # HTTP binding §3.2: a requested version the server does not support is 422 `unsupported`.
    response = await client.post("/ojs/v1/jobs", headers={"OJS-Version": version},
                                 json={"type": "a.b", "args": [], "options": {"queue": "ver"}})
    error = assert_ojs_error(response, 422, "unsupported")
    assert error["details"]["requested_version"] == version
    assert await queue_is_empty(client, "ver")


@pytest.mark.parametrize("version", ["1.0", "1", "1.0.0", "1.0.0-rc.1"])
async def test_supported_ojs_version_is_served(client, version):
    response = await client.post("/ojs/v1/jobs", headers={"OJS-Version": version},
                                 json={"type": "a.b", "args": []})
    assert response.status_code == 201, response.text
    assert response.headers["ojs-version"] == "1.0"
    # The manifest is how clients discover the version: it answers whatever they ask for.
    manifest = await client.get("/ojs/manifest", headers={"OJS-Version": "9.0"})
    assert manifest.status_code == 200


async def test_every_503_carries_retry_after(client):
    # ojs-errors.md ERR-006: the HTTP binding includes Retry-After on every 429 and 503.
    client.app.state.ctx.draining = True
    try:
        response = await client.get("/ready")
    finally:
        client.app.state.ctx.draining = False
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "retry-after" not in (await client.get("/ready")).headers
