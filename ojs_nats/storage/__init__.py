"""Everything the server keeps, in NATS JetStream; the only package that imports `nats`.

`Storage` bundles one connection with the stores built on it. It is created once per process
(`Storage.open`) and passed down; nothing here decides what a transition means, that is the
service layer's job.
"""

from __future__ import annotations

import contextlib
import logging

from ojs_nats.config import Settings
from ojs_nats.storage import provision
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.bulk import BulkWriter
from ojs_nats.storage.connection import Connection, JetStreamError, RevisionConflict
from ojs_nats.storage.counters import Counters
from ojs_nats.storage.cron import CronRegistry
from ojs_nats.storage.dead import DeadLetters
from ojs_nats.storage.events import EventLog
from ojs_nats.storage.follow_ups import FollowUps
from ojs_nats.storage.jobs import JobRecords, Stored
from ojs_nats.storage.limits import LimitStore
from ojs_nats.storage.names import Names
from ojs_nats.storage.queues import QueueSettings
from ojs_nats.storage.ready import ReadyEntry, ReadyIndex
from ojs_nats.storage.schemas import SchemaRegistry
from ojs_nats.storage.throughput import Throughput
from ojs_nats.storage.timers import FiredTimer, Timers
from ojs_nats.storage.unique import UniqueLocks
from ojs_nats.storage.workers import Workers
from ojs_nats.storage.workflows import WorkflowRecords

__all__ = [
    "FiredTimer",
    "JetStreamError",
    "ReadyEntry",
    "RevisionConflict",
    "Storage",
    "Stored",
]

log = logging.getLogger(__name__)


class Storage:
    def __init__(self, conn: Connection, settings: Settings) -> None:
        self.conn = conn
        self.settings = settings
        self.names = Names(settings.namespace)
        self.batches = BatchReplies(conn)
        self.jobs = JobRecords(conn, self.names, self.batches)
        self.ready = ReadyIndex(conn, self.names, self.batches)
        self.timers = Timers(conn, self.names)
        self.events = EventLog(conn, self.names, self.batches)
        self.counters = Counters(conn, self.names, self.batches)
        self.dead = DeadLetters(conn, self.names, self.batches, settings.dead_letter_retention_s)
        self.queues = QueueSettings(conn, self.names)
        self.workers = Workers(conn, self.names, self.batches, _worker_entry_ttl_s(settings))
        self.cron = CronRegistry(conn, self.names, self.batches)
        self.schemas = SchemaRegistry(conn, self.names, self.batches)
        self.workflows = WorkflowRecords(conn, self.names)
        self.unique = UniqueLocks(conn, self.names)
        self.limits = LimitStore(conn, self.names, self.batches)
        self.throughput = Throughput(self.names, self.batches)
        self.follow_ups = FollowUps(conn, self.names)
        self.bulk = BulkWriter(conn, self.names)

    @classmethod
    async def open(cls, settings: Settings, name: str = "ojs-nats-gateway") -> Storage:
        conn = await Connection.open(settings.nats_urls, name=name)
        conn.leader_reads = settings.replicas > 1
        storage = cls(conn, settings)
        try:
            await provision.provision(conn, settings)
            await storage.queues.start()
            await conn.client.subscribe(storage.names.control_subject, cb=storage._on_control)
        except BaseException:
            await conn.close(drain=False)
            raise
        return storage

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.queues.stop()
        await self.conn.close(drain=True)

    async def _on_control(self, msg: object) -> None:
        data = getattr(msg, "data", b"")
        if data == b"reset":
            self.forget_caches()

    def forget_caches(self) -> None:
        self.ready.forget()
        self.jobs.forget()
        self.queues.forget()
        self.schemas.forget()

    async def reset(self) -> None:
        """Wipe every job, timer, event, counter, queue setting, worker, schema, uniqueness lock
        and rate-limit state (test-only)."""
        names = self.names
        streams = [
            names.ready_stream,
            names.timers_stream,
            names.events_stream,
            names.counters_stream,
            names.dead_stream,
            names.jobs_stream,
            f"KV_{names.queues_bucket}",
            f"KV_{names.workers_bucket}",
            f"KV_{names.cron_bucket}",
            f"KV_{names.schemas_bucket}",
            f"KV_{names.workflows_bucket}",
            f"KV_{names.unique_bucket}",
            f"KV_{names.limits_bucket}",
            names.throughput_stream,
        ]
        for stream in streams:
            await self.conn.api(f"$JS.API.STREAM.PURGE.{stream}", {})
        # Ready consumers are per (queue, priority) and created on demand: drop them all.
        listing = await self.conn.api(f"$JS.API.CONSUMER.NAMES.{names.ready_stream}", {})
        for consumer in listing.get("consumers") or []:
            with contextlib.suppress(JetStreamError):
                await self.conn.api(f"$JS.API.CONSUMER.DELETE.{names.ready_stream}.{consumer}", {})
        self.forget_caches()
        await self.conn.publish(names.control_subject, b"reset")


def _worker_entry_ttl_s(settings: Settings) -> int:
    """Worker entries outlive the liveness timeout, so the timer still finds a dead worker's
    entry (and its last job list); at least 5 minutes, so the listing shows dead workers."""
    return max(300, 2 * settings.worker_heartbeat_timeout_ms // 1000 + 60)
