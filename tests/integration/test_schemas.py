"""Schema registry (HTTP binding §15, schema registry §4) and args validation at enqueue."""

import asyncio
import time
from urllib.parse import quote

import httpx

from ojs_nats.api.app import create_app
from ojs_nats.storage.schemas import REFRESH_S

EMAIL = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "array",
    "prefixItems": [
        {"type": "string", "format": "email"},
        {"type": "string", "enum": ["welcome", "password_reset"]},
    ],
    "minItems": 2,
    "maxItems": 3,
}
URI = "urn:ojs:schema:email.send:v1"


def path(uri):
    return "/ojs/v1/schemas/" + quote(uri, safe="")


async def register(client, **body):
    body = {"uri": URI, "type": "email.send", "version": 1, "schema": EMAIL, **body}
    return await client.post("/ojs/v1/schemas", json=body)


async def depth(client, queue):
    response = await client.post("/ojs/v1/workers/fetch", json={"queues": [queue], "count": 50})
    return len(response.json()["jobs"])


async def test_register_get_list_delete_by_uri(client):
    created = await register(client)
    assert created.status_code == 201, created.text
    schema = created.json()["schema"]
    assert (schema["uri"], schema["type"], schema["version"]) == (URI, "email.send", 1)
    assert schema["created_at"].endswith("Z")
    assert created.headers["location"] == path(URI)
    got = await client.get(path(URI))
    assert got.status_code == 200
    assert got.json()["schema"]["schema"] == EMAIL
    listed = (await client.get("/ojs/v1/schemas")).json()
    assert [s["uri"] for s in listed["schemas"]] == [URI]
    assert "schema" not in listed["schemas"][0]
    assert listed["pagination"]["total"] == 1
    deleted = await client.delete(path(URI))
    assert deleted.json() == {"deleted": True, "uri": URI, "type": "email.send", "version": 1}
    assert (await client.get(path(URI))).status_code == 404
    assert (await client.delete(path(URI))).status_code == 404
    # deleted means gone: the same URI and version can be registered again
    assert (await register(client)).status_code == 201


async def test_duplicate_uri_or_type_version_is_409_and_changes_nothing(client):
    assert (await register(client)).status_code == 201
    again = await register(client, schema={"type": "array"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    same_version = await register(client, uri="urn:other:email", version="1.0.0")
    assert same_version.status_code == 409
    assert same_version.json()["error"]["details"]["uri"] == URI
    assert (await client.get(path("urn:other:email"))).status_code == 404
    assert (await client.get(path(URI))).json()["schema"]["schema"] == EMAIL


async def test_invalid_schemas_and_bodies_are_400_and_store_nothing(client):
    cases = [
        {"schema": {"type": "no-such-type"}},
        {"schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "array"}},
        {"schema": {"$ref": "https://example.com/remote.json"}},
        {"schema": "not an object"},
        {"version": "one"},
        {"version": True},
        {"type": "Bad Type"},
        {"uri": "no scheme here"},
        {"extra": 1},
    ]
    for extra in cases:
        response = await register(client, **extra)
        assert response.status_code == 400, (extra, response.text)
        error = response.json()["error"]
        assert (error["code"], error["retryable"]) == ("invalid_request", False)
    bad = await register(client, schema={"type": "no-such-type"})
    assert bad.json()["error"]["details"]["schema_error"]
    not_json = await client.post("/ojs/v1/schemas", content=b"{",
                                 headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert (await client.get("/ojs/v1/schemas")).json()["schemas"] == []


async def test_registry_paths_by_type_and_version(client):
    # schema registry §4: job_type + SemVer; the URI defaults to urn:ojs:schema:{type}:v{version}
    for version in ("1.0.0", "2.0.0", "1.1.0"):
        body = {"job_type": "invoice.generate", "version": version,
                "schema": {"type": "array", "items": {"type": "object"}}}
        response = await client.post("/ojs/v1/schemas", json=body)
        assert response.status_code == 201, response.text
    latest = (await client.get("/ojs/v1/schemas/invoice.generate")).json()["schema"]
    assert latest["version"] == "2.0.0"
    assert latest["uri"] == "urn:ojs:schema:invoice.generate:v2.0.0"
    assert latest["job_type"] == "invoice.generate"
    versions = (await client.get("/ojs/v1/schemas/invoice.generate/versions")).json()["versions"]
    assert [(v["version"], v["is_latest"]) for v in versions] == [
        ("2.0.0", True), ("1.1.0", False), ("1.0.0", False)]
    deleted = await client.delete("/ojs/v1/schemas/invoice.generate/2.0.0")
    assert deleted.status_code == 200
    latest = (await client.get("/ojs/v1/schemas/invoice.generate")).json()["schema"]
    assert latest["version"] == "1.1.0"
    for missing in ("/ojs/v1/schemas/no.such.type", "/ojs/v1/schemas/no.such.type/versions",
                    "/ojs/v1/schemas/invoice.generate/9.0.0"):
        response = await client.get(missing)
        assert response.status_code == 404, missing
        assert response.json()["error"]["code"] == "not_found"
    assert (await client.delete("/ojs/v1/schemas/invoice.generate")).status_code == 400


async def test_enqueue_validates_args_against_the_type_schema(client):
    assert (await register(client)).status_code == 201
    ok = await client.post("/ojs/v1/jobs", json={
        "type": "email.send", "args": ["a@example.com", "welcome"], "options": {"queue": "sv"}})
    assert ok.status_code == 201, ok.text
    bad = await client.post("/ojs/v1/jobs", json={
        "type": "email.send", "args": ["not-an-email", "bogus"], "options": {"queue": "sv"}})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert (error["code"], error["retryable"]) == ("schema_validation", False)
    assert error["details"]["schema"] == URI
    paths = {e["path"] for e in error["details"]["validation_errors"]}
    assert paths == {"$.args[0]", "$.args[1]"}
    assert all(e["message"] and e["schema_path"].startswith("#/")
               for e in error["details"]["validation_errors"])
    # another type is not affected
    other = await client.post("/ojs/v1/jobs", json={
        "type": "other.kind", "args": [1], "options": {"queue": "sv"}})
    assert other.status_code == 201
    assert await depth(client, "sv") == 2  # the rejected job was not stored


async def test_enqueue_by_schema_uri_and_version(client):
    assert (await register(client)).status_code == 201
    assert (await register(client, uri="urn:ojs:schema:email.send:v2", version=2,
                           schema={"type": "array", "maxItems": 1})).status_code == 201
    # no version: the latest (v2, at most one arg)
    latest = await client.post("/ojs/v1/jobs", json={
        "type": "email.send", "args": ["a@example.com", "welcome"], "options": {"queue": "sv2"}})
    assert latest.status_code == 400
    assert latest.json()["error"]["details"]["schema"] == "urn:ojs:schema:email.send:v2"
    # named by URI or by version: v1 applies
    by_uri = await client.post("/ojs/v1/jobs", json={
        "type": "email.send", "schema": URI, "args": ["a@example.com", "welcome"],
        "options": {"queue": "sv2"}})
    assert by_uri.status_code == 201, by_uri.text
    assert by_uri.json()["job"]["schema"] == URI
    by_version = await client.post("/ojs/v1/jobs", json={
        "type": "email.send", "version": "1.0", "args": ["a@example.com", "welcome"],
        "options": {"queue": "sv2"}})
    assert by_version.status_code == 201, by_version.text
    unknown_version = await client.post("/ojs/v1/jobs", json={
        "type": "email.send", "version": "3.0", "args": [], "options": {"queue": "sv2"}})
    assert unknown_version.status_code == 400
    assert unknown_version.json()["error"]["code"] == "schema_validation"
    unknown_uri = await client.post("/ojs/v1/jobs", json={
        "type": "email.send", "schema": "urn:nowhere", "args": [], "options": {"queue": "sv2"}})
    assert unknown_uri.status_code == 400
    assert unknown_uri.json()["error"]["code"] == "schema_validation"
    assert await depth(client, "sv2") == 2


async def test_batch_is_rejected_whole_when_one_job_fails_its_schema(client):
    assert (await register(client)).status_code == 201
    good = {"type": "email.send", "args": ["a@example.com", "welcome"],
            "options": {"queue": "svb"}}
    bad = {"type": "email.send", "args": [42, "welcome"], "options": {"queue": "svb"}}
    response = await client.post("/ojs/v1/jobs/batch", json={"jobs": [good, bad, good]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "schema_validation"
    assert error["details"]["index"] == 1
    assert await depth(client, "svb") == 0
    accepted = await client.post("/ojs/v1/jobs/batch", json={"jobs": [good, good]})
    assert accepted.status_code == 201
    assert await depth(client, "svb") == 2


async def test_manifest_declares_schema_validation(client):
    manifest = (await client.get("/ojs/manifest")).json()
    assert manifest["capabilities"]["schema_validation"] is True
    assert "urn:ojs:ext:schema-registry" in manifest["extensions"]


async def test_deletion_applies_to_enqueue_at_once(client):
    assert (await register(client)).status_code == 201
    bad = {"type": "email.send", "args": [42], "options": {"queue": "svd"}}
    assert (await client.post("/ojs/v1/jobs", json=bad)).status_code == 400
    started = time.monotonic()
    assert (await client.delete(path(URI))).status_code == 200
    assert (await client.post("/ojs/v1/jobs", json=bad)).status_code == 201
    assert time.monotonic() - started < 1.0


async def test_another_replica_applies_a_registration_within_the_refresh_bound(client, settings):
    other_app = create_app(settings)
    async with other_app.router.lifespan_context(other_app):
        transport = httpx.ASGITransport(app=other_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as other:
            bad = {"type": "email.send", "args": [42], "options": {"queue": "svr"}}
            assert (await other.post("/ojs/v1/jobs", json=bad)).status_code == 201  # no schema
            assert (await register(client)).status_code == 201
            registered = time.monotonic()
            while (await other.post("/ojs/v1/jobs", json=bad)).status_code == 201:
                assert time.monotonic() - registered < REFRESH_S + 0.5
                await asyncio.sleep(0.05)


async def test_a_deletion_racing_a_takeover_leaves_the_new_claim_alone(client):
    # Replica A purged R's record; replica B, finding R's claim stale, registered R2 for the same
    # (type, version); only then does A get to R's claim. R2's claim must survive it, so that a
    # third registration for that version is still refused.
    registry = client.app.state.ctx.storage.schemas
    record = (await register(client)).json()["schema"]
    purge = f"$JS.API.STREAM.PURGE.{registry._stream}"
    await registry._conn.api(purge, {"filter": registry.record_subject(URI)})  # A, first half
    taken = await register(client, uri="urn:ojs:schema:email.send:v1-b")  # B
    assert taken.status_code == 201, taken.text
    await registry.delete(record)  # A, second half (its record purge finds nothing now)
    assert await registry.claimant("email.send", 1) == "urn:ojs:schema:email.send:v1-b"
    third = await register(client, uri="urn:ojs:schema:email.send:v1-c")
    assert third.status_code == 409, third.text


async def test_cron_and_workflow_jobs_are_validated_where_they_are_declared(client):
    assert (await register(client)).status_code == 201
    bad = {"type": "email.send", "args": ["not-an-email", "welcome"],
           "options": {"queue": "sv-cron"}}
    cron = await client.post("/ojs/v1/cron", json={
        "name": "bad-args", "expression": "* * * * *", "job_template": bad})
    assert cron.status_code == 400, cron.text
    assert cron.json()["error"]["code"] == "schema_validation"
    assert (await client.get("/ojs/v1/cron/bad-args")).status_code == 404
    good = {**bad, "args": ["a@example.com", "welcome"]}
    workflow = await client.post("/ojs/v1/workflows", json={
        "type": "chain", "steps": [good, bad]})
    assert workflow.status_code == 400, workflow.text
    assert workflow.json()["error"]["code"] == "schema_validation"
    assert await depth(client, "sv-cron") == 0
    ok = await client.post("/ojs/v1/workflows", json={"type": "chain", "steps": [good, good]})
    assert ok.status_code == 201, ok.text
