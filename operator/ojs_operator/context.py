"""What the use cases (`queues`, `cronjobs`) are handed: the process-wide clients, one resource
as plain data, the resource's in-memory state between timer ticks, and what a step produced.

Nothing here imports kopf: the handlers translate kopf's kwargs into these and an `Outcome`
back into a status patch and, on failure, kopf's retry errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ojs_operator.gateway import Gateway
from ojs_operator.kube import Kube
from ojs_operator.scaling import Sample
from ojs_operator.settings import Settings

#: The per-object logger kopf hands to handlers (its records name the resource).
Log = logging.Logger | logging.LoggerAdapter[Any]


class BlockedError(Exception):
    """A step cannot go on until something outside the gateway changes (the Deployment to
    scale is missing, a setting is not there): reported as a condition, checked again later."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    gateway: Gateway
    kube: Kube
    #: Wall clock (status timestamps, cooldowns that must survive a restart).
    clock: Callable[[], float] = time.time
    #: Monotonic clock (when the next check of a resource is due).
    monotonic: Callable[[], float] = time.monotonic


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    """One Queue or CronJob as the handler saw it."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    #: False when an older resource claims the same gateway name (see reconcile.owner).
    owned: bool = True
    owner: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(slots=True)
class Memory:
    """Per-resource state kept between timer ticks (lost on restart, which is safe: the next
    tick checks everything, and the scale-down window starts over)."""

    next_resync: float = 0.0
    next_poll: float = 0.0
    #: Consecutive failures to reach the gateway (or the API), and when to try again.
    failures: int = 0
    retry_at: float = 0.0
    history: list[Sample] = dataclasses.field(default_factory=list)
    #: The change handler and the timer run as separate tasks: one step at a time, so the
    #: second reads what the first wrote instead of writing the same change again.
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


@dataclasses.dataclass(slots=True)
class Outcome:
    #: Status fields to write (only the ones that changed).
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Set when the step failed: why, and whether trying again later can help.
    error: str | None = None
    retryable: bool = False
    retry_in_s: float = 0.0
