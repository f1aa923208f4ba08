"""Idempotent create-or-update of every stream, bucket and shared consumer the server uses.

Run by every gateway at start-up (any number at once is fine: creating an identical stream is a
no-op, and a changed setting is applied by update). The JetStream layout is documented in
docs/architecture.md; this module is its executable form.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ojs_nats.config import Settings
from ojs_nats.errors import StorageUnavailableError
from ojs_nats.storage import names as n
from ojs_nats.storage import throughput
from ojs_nats.storage.connection import Connection, JetStreamError

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
#: JetStream's "stream name already in use with a different configuration".
ERR_STREAM_NAME_IN_USE = 10058
#: How long a fetched-but-unclaimed ready entry or an unhandled fired timer waits before
#: JetStream redelivers it (covers a gateway dying between pulling and acking).
REDELIVERY_S = 30
#: Fired timers are handled in milliseconds; one held by a gateway that died is handed to
#: another after this long (a cron tick is late by at most this, never lost).
TIMER_REDELIVERY_S = 10
#: How long the deletion marker of an expired job record stays (for watchers).
DELETE_MARKER_TTL_S = 60


#: How long JetStream remembers a message id to drop a republished duplicate.
DUPLICATE_WINDOW_S = 120


def _stream(settings: Settings, name: str, subjects: list[str], **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "subjects": subjects,
        "storage": "file",
        "num_replicas": settings.replicas,
        "retention": "limits",
        "discard": "old",
        "duplicate_window": DUPLICATE_WINDOW_S * NS_PER_S,
    }
    config.update(extra)
    if config.get("max_age"):
        # JetStream refuses a duplicate window longer than the messages live (a short
        # `OJS_EVENTS_MAX_AGE_S` would stop the gateway at start).
        config["duplicate_window"] = min(config["duplicate_window"], config["max_age"])
    return config


def _bucket(settings: Settings, bucket: str, **extra: Any) -> dict[str, Any]:
    """The stream behind a KV bucket, configured as nats clients create it (so `nats kv` works)."""
    return _stream(
        settings,
        f"KV_{bucket}",
        [f"$KV.{bucket}.>"],
        max_msgs_per_subject=1,
        discard="new",
        allow_rollup_hdrs=True,
        deny_delete=True,
        allow_direct=True,
        **extra,
    )


def stream_configs(settings: Settings) -> list[dict[str, Any]]:
    names = n.Names(settings.namespace)
    ns = settings.namespace
    with_ttl = {"allow_msg_ttl": True, "subject_delete_marker_ttl": DELETE_MARKER_TTL_S * NS_PER_S}
    # Batch enqueue writes records, ready entries and events as atomic batches (storage/bulk.py).
    atomic = {"allow_atomic": True}
    return [
        _bucket(
            settings,
            names.jobs_bucket,
            max_msg_size=settings.max_body_bytes * 4,
            **with_ttl,
            **atomic,
        ),
        _bucket(settings, names.queues_bucket),
        _bucket(settings, names.workers_bucket, **with_ttl),
        _bucket(settings, names.cron_bucket),
        # Job argument schemas: a record and its (type, version) claim, created atomically.
        _bucket(settings, names.schemas_bucket, **atomic),
        _bucket(
            settings, names.workflows_bucket, max_msg_size=settings.max_body_bytes * 4, **with_ttl
        ),
        # Uniqueness locks and rate-limit state/concurrency slots (service/unique.py, limits.py).
        _bucket(settings, names.unique_bucket, **with_ttl),
        _bucket(settings, names.limits_bucket, **with_ttl),
        # Ready index: one entry per runnable job; acked (so deleted) when a fetcher claims it.
        # Direct get lets drop-oldest backpressure read the oldest entries without consuming.
        _stream(
            settings,
            names.ready_stream,
            [f"{ns}.ready.>"],
            retention="workqueue",
            allow_direct=True,
            **atomic,
        ),
        # Durable timers: schedules under .at., fired copies under .fired. (one consumer).
        _stream(
            settings,
            names.timers_stream,
            [f"{ns}.timers.>"],
            retention="workqueue",
            allow_msg_schedules=True,
        ),
        _stream(
            settings,
            names.events_stream,
            [f"{ns}.events.>"],
            allow_direct=True,
            max_age=settings.events_max_age_s * NS_PER_S,
            max_msgs=settings.events_max_count,
            **atomic,
        ),
        # Per-queue, per-state counters (server-side atomic increments, no CAS).
        _stream(
            settings,
            names.counters_stream,
            [f"{ns}.counts.>"],
            allow_msg_counter=True,
            max_msgs_per_subject=1,
            allow_direct=True,
        ),
        # Completed/failed attempts per queue and minute, forgotten after two hours.
        _stream(
            settings,
            names.throughput_stream,
            [f"{ns}.tput.>"],
            allow_msg_counter=True,
            max_msgs_per_subject=1,
            allow_direct=True,
            max_age=throughput.KEEP_S * NS_PER_S,
        ),
        # Dead-letter index: one entry per dead-lettered job, in order of arrival.
        _stream(
            settings,
            names.dead_stream,
            [f"{ns}.dead.>"],
            max_msgs_per_subject=1,
            allow_direct=True,
            allow_msg_ttl=True,
        ),
    ]


async def ensure_stream(conn: Connection, config: dict[str, Any]) -> None:
    name = config["name"]
    try:
        await conn.api(f"$JS.API.STREAM.CREATE.{name}", config)
    except JetStreamError as exc:
        if exc.err_code != ERR_STREAM_NAME_IN_USE:
            raise
        await conn.api(f"$JS.API.STREAM.UPDATE.{name}", config)


async def ensure_consumer(
    conn: Connection,
    stream: str,
    name: str,
    filter_subject: str,
    max_ack_pending: int = -1,
    ack_wait_s: int = REDELIVERY_S,
) -> None:
    """A durable pull consumer; creating it again with the same settings is a no-op."""
    config = {
        "durable_name": name,
        "name": name,
        "filter_subject": filter_subject,
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": ack_wait_s * NS_PER_S,
        "max_deliver": -1,
        "max_ack_pending": max_ack_pending,
        "max_waiting": 4096,
        "replay_policy": "instant",
    }
    await conn.api(
        f"$JS.API.CONSUMER.CREATE.{stream}.{name}",
        {"stream_name": stream, "config": config, "action": ""},
    )


async def provision(conn: Connection, settings: Settings, patience_s: float = 60.0) -> None:
    """Create or update everything; safe to run concurrently from every replica.

    A cluster that is still forming (no meta leader yet, peers not all known) refuses stream
    creation for a few seconds; that is retried for up to `patience_s` instead of failing the
    gateway's start.
    """
    deadline = time.monotonic() + patience_s
    delay = 0.2
    while True:
        try:
            await _provision_once(conn, settings)
            return
        except (JetStreamError, StorageUnavailableError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("JetStream not ready to provision yet (%s); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)


async def _provision_once(conn: Connection, settings: Settings) -> None:
    names = n.Names(settings.namespace)
    for config in stream_configs(settings):
        await ensure_stream(conn, config)
    await ensure_consumer(
        conn,
        names.timers_stream,
        names.timers_consumer,
        names.fired_filter,
        max_ack_pending=20_000,
        ack_wait_s=TIMER_REDELIVERY_S,
    )
