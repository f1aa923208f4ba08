"""`DirectTransport` answers as a gateway would, errors included, and says when NATS is away."""

from __future__ import annotations

import time

import pytest

from ojs_nats import direct
from ojs_nats.config import Settings
from ojs_nats.direct import DirectTransport
from ojs_nats.embedded import free_port
from ojs_nats.model import ids
from ojs_nats.worker.transport import TransportError


async def test_fetch_ack_and_refusals_have_the_http_shapes(settings, client):
    transport = DirectTransport(settings)
    try:
        pushed = (await client.post("/ojs/v1/jobs", json={
            "type": "t", "args": [1], "options": {"queue": "dt"}})).json()["job"]
        fetched = await transport.fetch(("dt",), 5, "w1", None)
        assert [j["id"] for j in fetched.jobs] == [pushed["id"]]
        assert fetched.wait_max_ms > 0  # long polls are allowed, as the gateway announces

        batch = await transport.ack_batch(
            "w1", [{"job_id": pushed["id"], "result": {"ok": 1}}, {"job_id": ids.uuid7()}],
            time.monotonic() + 5)
        done, missing = batch.body["results"]
        assert (done["acknowledged"], done["state"]) == (True, "completed")
        assert (missing["acknowledged"], missing["error"]["code"]) == (False, "not_found")

        again = await transport.ack(pushed["id"], "w1", None, time.monotonic() + 5)
        assert (again.status, again.current_state) == (409, "completed")
        unknown = await transport.ack(ids.uuid7(), "w1", None, time.monotonic() + 5)
        assert unknown.status == 404
        bad = await transport.fail(pushed["id"], "w1", {"message": 5}, time.monotonic() + 5)
        assert (bad.status, bad.body["error"]["code"]) == (400, "invalid_request")

        stored = (await client.get(f"/ojs/v1/jobs/{pushed['id']}")).json()["job"]
        assert (stored["state"], stored["result"]) == ("completed", {"ok": 1})

        beat = await transport.beat({"worker_id": "w1", "state": "running", "active_jobs": []})
        assert beat.ok
        assert beat.body["state"] == "running"
    finally:
        await transport.close()


async def test_no_nats_is_a_transport_error_by_the_deadline(monkeypatch):
    monkeypatch.setattr(direct, "CONNECT_WAIT_S", 0.5)
    transport = DirectTransport(Settings(nats_urls=(f"nats://127.0.0.1:{free_port()}",)))
    try:
        began = time.monotonic()
        with pytest.raises(TransportError, match="not reachable"):
            await transport.fetch(("dt",), 1, "w1", None)
        with pytest.raises(TransportError):
            await transport.ack(ids.uuid7(), "w1", None, time.monotonic() + 1.0)
        assert time.monotonic() - began < 1.5 + 1.0
        with pytest.raises(TransportError, match="fetch refused"):
            await transport.fetch(("bad queue!",), 1, "w1", None)
    finally:
        await transport.close()  # stops the connection attempts
