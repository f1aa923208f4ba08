"""Worker settings: defaults, `OJS_*` environment variables, then explicit arguments.

Precedence follows ojs-sdk-guidelines §7.2 (programmatic > environment > default). Only
`WorkerSettings.from_env` reads `os.environ`; everything else receives the settings object.
The names of the defaults are the worker protocol's (Appendix A).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

#: Worker protocol defaults (ojs-worker-protocol.md, Appendix A).
DEFAULT_CONCURRENCY = 10
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
#: 25 s (worker protocol §7.3), not the 30 s of graceful-shutdown GS-003: it leaves room for the
#: hand-back and deregistration inside Kubernetes' default 30 s termination grace period.
DEFAULT_GRACE_PERIOD_S = 25.0
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_URL = "http://127.0.0.1:8080"


class WorkerSettingsError(ValueError):
    """A worker setting has an invalid value."""


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerSettings:
    #: Gateway base URLs; requests fail over from one to the next.
    urls: tuple[str, ...] = (DEFAULT_URL,)
    #: Queues to fetch from, highest priority first.
    queues: tuple[str, ...] = ("default",)
    #: Most jobs run at once (also the size of the thread pool for sync handlers).
    concurrency: int = DEFAULT_CONCURRENCY
    #: How long in-flight jobs may keep running after SIGTERM before they are handed back.
    grace_period_s: float = DEFAULT_GRACE_PERIOD_S
    #: Longest time between two heartbeats (shorter when a job's visibility timeout needs it).
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
    #: Pause after a fetch that returned nothing.
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    #: Visibility timeout asked for on fetch; None leaves it to the job or the server.
    visibility_timeout_ms: int | None = None
    #: Free-form labels reported on registration and heartbeats.
    labels: tuple[str, ...] = ()
    #: Seconds one HTTP request to a gateway may take.
    request_timeout_s: float = 10.0
    #: How long ACK and NACK keep retrying (across gateways) before the job is left to its
    #: visibility timeout.
    report_timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, (var, parse) in _ENV_FIELDS.items():
            raw = env.get(var, "")
            if raw.strip():
                try:
                    values[name] = parse(raw)
                except ValueError as exc:
                    raise WorkerSettingsError(f"{var}={raw!r}: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("urls", "queues", "labels"):
            if isinstance(values.get(name), list | str):
                values[name] = _as_tuple(values[name])
        settings = cls(**values)
        settings.check()
        return settings

    def replace(self, **changes: Any) -> WorkerSettings:
        """A copy with `changes` applied (None values ignored), checked."""
        changes = {k: v for k, v in changes.items() if v is not None}
        for name in ("urls", "queues", "labels"):
            if isinstance(changes.get(name), list | str):
                changes[name] = _as_tuple(changes[name])
        settings = dataclasses.replace(self, **changes)
        settings.check()
        return settings

    def check(self) -> None:
        if not self.urls:
            raise WorkerSettingsError("at least one gateway URL is required (OJS_URL)")
        if not self.queues:
            raise WorkerSettingsError("at least one queue is required (OJS_QUEUES)")
        if self.concurrency < 1:
            raise WorkerSettingsError("concurrency must be at least 1 (OJS_CONCURRENCY)")
        if self.grace_period_s < 0:
            raise WorkerSettingsError("the grace period must not be negative")
        if self.heartbeat_interval_s <= 0 or self.poll_interval_s <= 0:
            raise WorkerSettingsError("heartbeat and poll intervals must be positive")
        if self.visibility_timeout_ms is not None and self.visibility_timeout_ms < 1:
            raise WorkerSettingsError("the visibility timeout must be positive")


def _as_tuple(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip() for item in items if item.strip())


def _seconds(text: str) -> float:
    """`25`, `2.5` or `25s`."""
    value = float(text.strip().removesuffix("s"))
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


_ENV_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "urls": ("OJS_URL", _as_tuple),
    "queues": ("OJS_QUEUES", _as_tuple),
    "concurrency": ("OJS_CONCURRENCY", _count),
    "grace_period_s": ("OJS_SHUTDOWN_GRACE_PERIOD_S", _seconds),
    "heartbeat_interval_s": ("OJS_HEARTBEAT_INTERVAL_S", _seconds),
    "poll_interval_s": ("OJS_POLL_INTERVAL_S", _seconds),
    "visibility_timeout_ms": ("OJS_VISIBILITY_TIMEOUT_MS", _count),
    "labels": ("OJS_WORKER_LABELS", _as_tuple),
}
