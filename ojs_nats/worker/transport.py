"""How a worker reaches the server: the `WorkerTransport` operations, and `Transport`, their
HTTP implementation for any OJS gateway.

`WorkerTransport` is what the runtime depends on; `ojs_nats.direct.DirectTransport` implements it
over JetStream through the gateway's own service layer (no HTTP hop), for ojs-nats deployments.

A request that gets no answer (refused, reset, timeout, 502/503/504) moves on to the next
gateway URL. FETCH and BEAT try each gateway once; ACK and FAIL retry until their deadline, since
a report that never lands makes the job run again after its visibility timeout. The client is
aiohttp: measured here, about a quarter of httpx's CPU per request, which matters to a worker
that fetches and acknowledges thousands of jobs a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from typing import Any, Protocol

import aiohttp
import orjson

log = logging.getLogger(__name__)

#: Answers that mean "no usable answer": the request is tried again (elsewhere, or later).
RETRY_STATUSES = frozenset({502, 503, 504})
#: The batch ACK extension of ojs-nats gateways (see `acks.py`).
ACK_BATCH_PATH = "/ojs/v1/workers/ack/batch"
#: ojs-nats gateways name in every FETCH answer the longest wait a fetch may ask for.
FETCH_WAIT_HEADER = "OJS-Fetch-Wait-Max-Ms"
_HEADERS = {"content-type": "application/openjobspec+json", "accept": "application/json"}
#: Backoff between tries of one request, growing up to the cap.
_FIRST_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 1.0


class TransportError(Exception):
    """No gateway answered (usefully) before the deadline."""


@dataclasses.dataclass(frozen=True, slots=True)
class Fetched:
    jobs: list[dict[str, Any]]
    #: The longest wait the server allows a fetch (0: it does not wait).
    wait_max_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    #: How many times the request was sent; a 409 after a retry usually means an earlier
    #: try had already landed.
    tries: int
    #: The longest FETCH wait the server allows (its `OJS-Fetch-Wait-Max-Ms` header), or 0.
    fetch_wait_max_ms: int = 0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def current_state(self) -> str | None:
        """The job's state a 409 names (`error.details.current_state`), if the server says."""
        error = self.body.get("error")
        details = error.get("details") if isinstance(error, dict) else None
        state = details.get("current_state") if isinstance(details, dict) else None
        return state if isinstance(state, str) else None

    @property
    def error_message(self) -> str:
        error = self.body.get("error")
        if isinstance(error, dict):
            return f"{error.get('code')}: {error.get('message')}"
        return f"HTTP {self.status}"


class Backoff:
    """Pauses between tries of one request, doubling up to a cap, within its deadline."""

    def __init__(self) -> None:
        self._pause_s = _FIRST_BACKOFF_S

    async def pause(self, deadline: float, tries: int, problem: str) -> None:
        """Sleep before the next try.

        Raises:
            TransportError: the pause would end past `deadline` (monotonic).
        """
        if time.monotonic() + self._pause_s > deadline:
            raise TransportError(f"gave up after {tries} tries; last: {problem}")
        log.debug("retrying: %s", problem)
        await asyncio.sleep(self._pause_s)
        self._pause_s = min(self._pause_s * 2, _MAX_BACKOFF_S)


class WorkerTransport(Protocol):
    """The server operations a worker uses. Answers come as the HTTP binding shapes them
    (`Reply`: status and JSON body), whatever the transport; `TransportError` means no answer."""

    async def fetch(
        self,
        queues: tuple[str, ...],
        count: int,
        worker_id: str,
        visibility_ms: int | None,
        wait_ms: int = 0,
    ) -> Fetched: ...

    async def ack(self, job_id: str, worker_id: str, result: Any, deadline: float) -> Reply: ...

    async def ack_batch(
        self, worker_id: str, acks: list[dict[str, Any]], deadline: float
    ) -> Reply: ...

    async def fail(
        self,
        job_id: str,
        worker_id: str,
        error: dict[str, Any],
        deadline: float,
        requeue: bool = False,
    ) -> Reply: ...

    async def beat(self, body: dict[str, Any], deadline: float | None = None) -> Reply: ...

    async def progress(self, job_id: str, body: dict[str, Any]) -> Reply: ...

    async def close(self) -> None: ...

    def describe(self) -> str:
        """Where the operations go, for the start-up log line."""
        ...


class Transport:
    """`WorkerTransport` over HTTP, with fail-over between gateway URLs."""

    def __init__(
        self,
        urls: tuple[str, ...],
        request_timeout_s: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        self._urls = [u.rstrip("/") for u in urls]
        # Start at a random gateway so a fleet of workers spreads over the replicas.
        self._current = random.randrange(len(self._urls))
        self._timeout = aiohttp.ClientTimeout(
            total=request_timeout_s, connect=min(2.0, request_timeout_s)
        )
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the running event loop.
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=self._timeout,
                headers=_HEADERS,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def describe(self) -> str:
        return "gateways " + ",".join(self._urls)

    # ------------------------------------------------------------ operations
    async def fetch(
        self,
        queues: tuple[str, ...],
        count: int,
        worker_id: str,
        visibility_ms: int | None,
        wait_ms: int = 0,
    ) -> Fetched:
        """Claim up to `count` jobs; `wait_ms` > 0 asks the server to wait for one (only for
        servers that announced it: the official request schema allows no other field)."""
        body: dict[str, Any] = {"queues": list(queues), "count": count, "worker_id": worker_id}
        if visibility_ms is not None:
            body["visibility_timeout_ms"] = visibility_ms
        if wait_ms > 0:
            body["wait_ms"] = wait_ms
        reply = await self.call("POST", "/ojs/v1/workers/fetch", body, deadline=None)
        if not reply.ok:
            raise TransportError(f"fetch refused: {reply.error_message}")
        jobs = reply.body.get("jobs") or []
        return Fetched(
            [job for job in jobs if isinstance(job, dict) and isinstance(job.get("id"), str)],
            reply.fetch_wait_max_ms,
        )

    async def ack(self, job_id: str, worker_id: str, result: Any, deadline: float) -> Reply:
        body: dict[str, Any] = {"job_id": job_id, "worker_id": worker_id}
        if result is not None:
            body["result"] = result
        return await self.call("POST", "/ojs/v1/workers/ack", body, deadline)

    async def ack_batch(self, worker_id: str, acks: list[dict[str, Any]], deadline: float) -> Reply:
        """Extension: `acks` items are `{"job_id", "result"?}`; the answer lists each outcome
        (`results`). A server without the extension answers 404 or 405."""
        return await self.call(
            "POST", ACK_BATCH_PATH, {"worker_id": worker_id, "acks": acks}, deadline
        )

    async def fail(
        self,
        job_id: str,
        worker_id: str,
        error: dict[str, Any],
        deadline: float,
        requeue: bool = False,
    ) -> Reply:
        body: dict[str, Any] = {"job_id": job_id, "worker_id": worker_id, "error": error}
        if requeue:
            body["requeue"] = True
        return await self.call("POST", "/ojs/v1/workers/nack", body, deadline)

    async def beat(self, body: dict[str, Any], deadline: float | None = None) -> Reply:
        return await self.call("POST", "/ojs/v1/workers/heartbeat", body, deadline)

    async def progress(self, job_id: str, body: dict[str, Any]) -> Reply:
        """PUT /jobs/{id}/progress (ojs-progress.md §6.1): tried once, fire-and-forget."""
        return await self.call("PUT", f"/ojs/v1/jobs/{job_id}/progress", body, deadline=None)

    # ------------------------------------------------------------ the request loop
    async def call(
        self, method: str, path: str, body: dict[str, Any], deadline: float | None
    ) -> Reply:
        """Send, failing over between gateways until an answer or `deadline` (monotonic).

        With `deadline=None` every gateway is tried at most once.

        Raises:
            TransportError: no usable answer in time.
        """
        content = orjson.dumps(body)
        tries = 0
        backoff = Backoff()
        problem = "no gateway tried"
        while True:
            url = self._urls[self._current] + path
            tries += 1
            try:
                async with self._session().request(method, url, data=content) as response:
                    status, raw = response.status, await response.read()
                    wait_max = response.headers.get(FETCH_WAIT_HEADER, "")
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{url}: {type(exc).__name__} {exc}".strip()
            else:
                if status not in RETRY_STATUSES:
                    return Reply(
                        status, _json(raw), tries, int(wait_max) if wait_max.isdigit() else 0
                    )
                problem = f"{url}: HTTP {status}"
            self._rotate()
            if deadline is None:
                if tries >= len(self._urls):
                    raise TransportError(problem)
                continue
            await backoff.pause(deadline, tries, problem)

    def _rotate(self) -> None:
        self._current = (self._current + 1) % len(self._urls)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
