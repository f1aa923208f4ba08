"""The operator's settings, read from the environment once at start-up and passed down.

`Settings.from_env` is the only reader of `os.environ` in the operator; every variable is listed
with its default in the README. Bad values stop start-up with a message naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A variable has a value the operator cannot use."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    #: Base URL of the gateway the operator reconciles through (HTTP API only).
    gateway_url: str = "http://127.0.0.1:8080"
    #: Bearer token sent to the gateway, if it sits behind an authenticating proxy.
    gateway_token: str | None = None
    #: Seconds a gateway request may take before it counts as unreachable.
    gateway_timeout_s: float = 10.0
    #: The gateways' OJS_NAMESPACE: KEDA triggers name its streams and consumers.
    ojs_namespace: str = "ojs"
    #: NATS monitoring endpoint (http://host:8222) for KEDA ScaledObjects; None: keda mode off.
    nats_monitor_url: str | None = None
    #: Seconds between drift checks of each resource (and cron status refreshes).
    resync_s: float = 30.0
    log_level: str = "info"
    #: Kubeconfig outside a cluster (in a pod the service account is used); None: ~/.kube/config.
    kubeconfig: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        default = cls()
        level = env.get("OJS_LOG_LEVEL", default.log_level).strip().lower()
        if level not in LOG_LEVELS:
            raise SettingsError(f"OJS_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        return cls(
            gateway_url=_url(env, "OJS_GATEWAY_URL", None) or default.gateway_url,
            gateway_token=env.get("OJS_GATEWAY_TOKEN") or None,
            gateway_timeout_s=_positive(env, "OJS_GATEWAY_TIMEOUT_S", default.gateway_timeout_s),
            ojs_namespace=env.get("OJS_NAMESPACE", default.ojs_namespace),
            nats_monitor_url=_url(env, "OJS_NATS_MONITOR_URL", None),
            resync_s=_positive(env, "OJS_OPERATOR_RESYNC_S", default.resync_s),
            log_level=level,
            kubeconfig=env.get("KUBECONFIG") or None,
        )


def _url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(name, "").strip() or default
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be greater than zero")
    return value
