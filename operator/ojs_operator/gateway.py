"""The gateway's HTTP API, as the operator uses it: queue configuration and stats, cron jobs.

HTTP only (httpx): the operator never talks to NATS. Failures come out as two kinds, because
they call for different reactions: `GatewayUnavailableError` (no answer, timeout, 5xx, 429:
retry with backoff) and `GatewayRejectedError` (any other 4xx: the resource needs fixing).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

API = "/ojs/v1"


class GatewayError(Exception):
    """The gateway did not do what was asked."""


class GatewayUnavailableError(GatewayError):
    """No usable answer (connection refused, timeout, 5xx, 429): worth retrying later."""


class GatewayRejectedError(GatewayError):
    """The gateway refused the request (4xx): retrying the same request will not help."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Gateway:
    """One client (connection pool) per operator process."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ queues

    async def queue_config(self, queue: str) -> dict[str, Any] | None:
        """The queue's configuration document, or None if the queue has no entry."""
        return await self._json("GET", f"/queues/{_seg(queue)}/config", missing_ok=True)

    async def put_queue_config(self, queue: str, config: dict[str, Any]) -> dict[str, Any]:
        """Set the fields given (null resets one); creates the queue's entry if needed."""
        answer = await self._json("PUT", f"/queues/{_seg(queue)}/config", body=config)
        assert answer is not None
        return answer

    async def delete_queue(self, queue: str) -> bool:
        """Remove the queue; False if it had no entry. Raises GatewayRejectedError (409) while
        the queue still holds unfinished jobs."""
        return await self._json("DELETE", f"/queues/{_seg(queue)}", missing_ok=True) is not None

    async def queue_stats(self, queue: str) -> dict[str, Any] | None:
        """Counts by state (`available`, `active`, ...), `paused`; None for an unknown queue."""
        answer = await self._json("GET", f"/queues/{_seg(queue)}/stats", missing_ok=True)
        return None if answer is None else dict(answer["queue"])

    # ------------------------------------------------------------ cron

    async def cron(self, name: str) -> dict[str, Any] | None:
        answer = await self._json("GET", f"/cron/{_seg(name)}", missing_ok=True)
        return None if answer is None else dict(answer["cron_job"])

    async def register_cron(self, registration: dict[str, Any]) -> dict[str, Any]:
        """Create or replace (upsert) a cron job."""
        answer = await self._json("POST", "/cron", body=registration)
        assert answer is not None
        return dict(answer["cron_job"])

    async def set_cron_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        answer = await self._json("PATCH", f"/cron/{_seg(name)}", body={"enabled": enabled})
        assert answer is not None
        return dict(answer["cron_job"])

    async def delete_cron(self, name: str) -> bool:
        """Unregister; False if there was nothing to unregister."""
        return await self._json("DELETE", f"/cron/{_seg(name)}", missing_ok=True) is not None

    # ------------------------------------------------------------ transport

    async def _json(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        try:
            response = await self._http.request(method, API + path, json=body)
        except httpx.HTTPError as exc:
            raise GatewayUnavailableError(f"{method} {path}: {exc!r}") from exc
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 500 or response.status_code == 429:
            raise GatewayUnavailableError(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            code, message = _error_of(response)
            raise GatewayRejectedError(response.status_code, code, message)
        try:
            answer = response.json()
        except ValueError as exc:
            raise GatewayUnavailableError(f"{method} {path}: answer is not JSON") from exc
        return answer if isinstance(answer, dict) else {"value": answer}


def _seg(name: str) -> str:
    """A name as one path segment (queue and cron names are URL-safe already; be sure)."""
    return quote(name, safe="")


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
        return str(error.get("code", "error")), str(error.get("message", response.text))
    except (ValueError, AttributeError):
        return "error", response.text[:500]
