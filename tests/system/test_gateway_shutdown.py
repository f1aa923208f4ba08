"""A gateway process on SIGTERM: readiness fails and no jobs are handed out first, in-flight
requests finish, the NATS connection drains, and the process exits 0 within its time budget."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import orjson


async def half_sent_push(port: int, body: bytes) -> tuple[asyncio.StreamReader,
                                                           asyncio.StreamWriter]:
    """A PUSH whose body is only half sent: an in-flight request the gateway must wait for."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /ojs/v1/jobs HTTP/1.1\r\nHost: gateway\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2])
    await writer.drain()
    return reader, writer


async def exit_status(process, timeout: float) -> tuple[int, float]:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, "the gateway did not exit"
        await asyncio.sleep(0.01)
    return process.returncode, time.monotonic()


async def test_sigterm_fails_readiness_first_finishes_requests_and_exits_0(gateway_factory):
    leaving = gateway_factory(OJS_SHUTDOWN_DELAY_S="1", OJS_DRAIN_TIMEOUT_S="5")
    staying = gateway_factory()
    async with httpx.AsyncClient(base_url=leaving.url, timeout=5) as old, \
            httpx.AsyncClient(base_url=staying.url, timeout=5) as new:
        waiting = (await old.post("/ojs/v1/jobs", json={
            "type": "drain.test", "args": [], "options": {"queue": "gw-drain"}})).json()["job"]
        late_body = orjson.dumps({"type": "drain.late", "args": [1],
                                  "options": {"queue": "gw-drain-late"}})
        reader, writer = await half_sent_push(leaving.port, late_body)

        signalled = time.monotonic()
        leaving.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        # Still serving, but not ready and handing out nothing.
        ready = await old.get("/ready")
        assert (ready.status_code, ready.json()["status"]) == (503, "draining")
        fetched = await old.post("/ojs/v1/workers/fetch", json={"queues": ["gw-drain"]})
        assert fetched.json()["jobs"] == []
        assert (await old.get(f"/ojs/v1/jobs/{waiting['id']}")).status_code == 200

        # After OJS_SHUTDOWN_DELAY_S the listener closes: no new connections.
        await asyncio.sleep(0.8)
        while True:
            try:
                async with httpx.AsyncClient(base_url=leaving.url, timeout=2) as fresh:
                    await fresh.get("/ready")
            except httpx.HTTPError:
                break
            assert time.monotonic() - signalled < 4, "the listener should close after the delay"
            await asyncio.sleep(0.05)
        assert time.monotonic() - signalled >= 1.0 - 0.05, "closed before the delay was over"

        writer.write(late_body[len(late_body) // 2:])  # the in-flight request completes
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 201"), head
        writer.close()

        status, exited = await exit_status(leaving.process, timeout=10)
        assert status == 0
        assert exited - signalled < 1.0 + 1.4 + 3.0

        # Nothing was lost: the late job was stored, the waiting one is still there to fetch.
        late = (await new.post("/ojs/v1/workers/fetch", json={"queues": ["gw-drain-late"]}))
        assert [j["type"] for j in late.json()["jobs"]] == ["drain.late"]
        again = (await new.post("/ojs/v1/workers/fetch", json={"queues": ["gw-drain"]}))
        assert [j["id"] for j in again.json()["jobs"]] == [waiting["id"]]


async def test_a_request_that_never_ends_does_not_hold_the_shutdown_past_its_timeout(
        gateway_factory):
    gateway = gateway_factory(OJS_DRAIN_TIMEOUT_S="2")
    _, writer = await half_sent_push(gateway.port, b'{"type": "never.finished", "args": []}')
    signalled = time.monotonic()
    gateway.process.send_signal(signal.SIGTERM)
    status, exited = await exit_status(gateway.process, timeout=15)
    writer.close()
    assert status == 0
    assert 2.0 - 0.2 <= exited - signalled < 2.0 + 3.0, exited - signalled
