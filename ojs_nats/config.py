"""Gateway settings, read from the environment once at start-up and passed down.

Every variable is listed, with its default, in the README; `Settings.from_env` is the only place
that reads `os.environ`. Bad values fail start-up with a message naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from ojs_nats.errors import OjsError

_NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")


class ConfigError(OjsError):
    """A setting has an invalid value."""

    code = "invalid_config"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    #: NATS server URLs (a cluster may list several).
    nats_urls: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    #: Address and port the HTTP gateway listens on.
    host: str = "127.0.0.1"
    port: int = 8080
    #: Prefix of every stream, bucket and subject, so several deployments can share one NATS.
    namespace: str = "ojs"
    #: Replicas of every stream and bucket (3 on a 3-node cluster).
    replicas: int = 1
    #: Largest accepted request body; larger requests get 413.
    max_body_bytes: int = 1_048_576
    #: Reservation of a fetched job when neither the job nor the fetch names one.
    default_visibility_timeout_ms: int = 1_800_000
    #: Heartbeat timeout of an active job that does not set `heartbeat_timeout(_ms)`: with no
    #: BEAT or progress report for this long the job is stalled (ojs-timeouts.md §5.5; 0 = off).
    #: Not the spec's recommended 60 s: the official suite holds a job 65 s without a BEAT and
    #: expects it still active (L2-CRON-005), the reason the visibility default is long too.
    default_heartbeat_timeout_ms: int = 120_000
    #: A worker without a heartbeat for this long is dead: its listed jobs are recovered at once
    #: (ojs-worker-protocol.md §10; 0 = off, leaving them to their stall/visibility timeouts).
    worker_heartbeat_timeout_ms: int = 30_000
    #: Execution timeout of a job that does not set `timeout_ms` (0 = none beyond visibility).
    default_timeout_ms: int = 0
    #: How long finished (completed, cancelled, discarded) jobs stay readable.
    finished_retention_s: int = 86_400
    #: How long dead-lettered jobs stay listable and retryable.
    dead_letter_retention_s: int = 604_800
    #: Most dead-lettered jobs kept (all queues together); the oldest beyond it are pruned
    #: (ojs-dead-letter.md §5.2; 0 = no count limit, only the retention time).
    dead_letter_max_count: int = 10_000
    #: Event log limits.
    events_max_age_s: int = 604_800
    events_max_count: int = 1_000_000
    #: Expose POST /ojs/v1/admin/reset (wipes everything; for conformance runs only).
    enable_test_reset: bool = False
    #: Seconds the gateway waits for in-flight requests on SIGTERM before closing NATS.
    drain_timeout_s: float = 20.0
    #: Seconds between SIGTERM (readiness fails, no jobs handed out) and closing the listener,
    #: so load balancers see the failing probe first (Kubernetes: a few seconds).
    shutdown_delay_s: float = 0.0
    #: Uvicorn worker processes.
    workers: int = 0
    log_level: str = "info"
    #: Name used in event `source` URIs.
    service_name: str = "ojs-nats"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from environment variables, then apply explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if "NATS_URL" in env:
            values["nats_urls"] = _urls(env["NATS_URL"])
        for name, (var, parse) in _ENV_FIELDS.items():
            if var in env and env[var] != "":
                try:
                    values[name] = parse(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var}={env[var]!r}: {exc}") from exc
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        if not _NAMESPACE_RE.match(self.namespace):
            raise ConfigError("OJS_NAMESPACE must be 1-16 lowercase letters/digits, starting a-z")
        if self.replicas not in (1, 3, 5):
            raise ConfigError("OJS_REPLICAS must be 1, 3 or 5")
        if self.max_body_bytes < 1024:
            raise ConfigError("OJS_MAX_BODY_BYTES must be at least 1024")
        if not self.nats_urls:
            raise ConfigError("NATS_URL must name at least one server")
        if self.drain_timeout_s < 0 or self.shutdown_delay_s < 0:
            raise ConfigError("OJS_DRAIN_TIMEOUT_S and OJS_SHUTDOWN_DELAY_S must not be negative")


def _urls(text: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in text.split(",") if u.strip())


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


_ENV_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "host": ("OJS_HOST", str),
    "port": ("OJS_PORT", _positive_int),
    "namespace": ("OJS_NAMESPACE", str),
    "replicas": ("OJS_REPLICAS", _positive_int),
    "max_body_bytes": ("OJS_MAX_BODY_BYTES", _positive_int),
    "default_visibility_timeout_ms": ("OJS_DEFAULT_VISIBILITY_TIMEOUT_MS", _positive_int),
    "default_heartbeat_timeout_ms": ("OJS_DEFAULT_HEARTBEAT_TIMEOUT_MS", _positive_int),
    "default_timeout_ms": ("OJS_DEFAULT_TIMEOUT_MS", _positive_int),
    "worker_heartbeat_timeout_ms": ("OJS_WORKER_HEARTBEAT_TIMEOUT_MS", _positive_int),
    "finished_retention_s": ("OJS_FINISHED_RETENTION_S", _positive_int),
    "dead_letter_retention_s": ("OJS_DEAD_LETTER_RETENTION_S", _positive_int),
    "dead_letter_max_count": ("OJS_DEAD_LETTER_MAX_COUNT", _positive_int),
    "events_max_age_s": ("OJS_EVENTS_MAX_AGE_S", _positive_int),
    "events_max_count": ("OJS_EVENTS_MAX_COUNT", _positive_int),
    "enable_test_reset": ("OJS_ENABLE_TEST_RESET", _bool),
    "drain_timeout_s": ("OJS_DRAIN_TIMEOUT_S", float),
    "shutdown_delay_s": ("OJS_SHUTDOWN_DELAY_S", float),
    "workers": ("OJS_WORKERS", _positive_int),
    "log_level": ("OJS_LOG_LEVEL", str),
    "service_name": ("OJS_SERVICE_NAME", str),
}
