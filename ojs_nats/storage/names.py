"""Every stream, bucket, subject, consumer and header name the server uses, in one place.

All names derive from the deployment's namespace (default `ojs`), so several deployments, or
several test runs, can share one NATS without seeing each other. Queue names may contain dots,
which would split a subject token, so they are encoded (`.` -> `_`; `_` is not legal in a queue).
"""

from __future__ import annotations

import dataclasses

# Headers of the JetStream features we rely on (nats-server >= 2.12).
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
MSG_TTL = "Nats-TTL"
MSG_ID = "Nats-Msg-Id"
SCHEDULE = "Nats-Schedule"
SCHEDULE_TARGET = "Nats-Schedule-Target"
INCREMENT = "Nats-Incr"
KV_OPERATION = "KV-Operation"
BATCH_ID = "Nats-Batch-Id"
BATCH_SEQUENCE = "Nats-Batch-Sequence"
BATCH_COMMIT = "Nats-Batch-Commit"
#: JetStream error codes for a failed compare-and-set (wrong last sequence): a single server
#: answers 10071 ("wrong last sequence: N"), the leader of a clustered stream 10164 (no number).
ERR_WRONG_LAST_SEQUENCE = frozenset({10071, 10164})


def encode_queue(queue: str) -> str:
    return queue.replace(".", "_")


def decode_queue(token: str) -> str:
    return token.replace("_", ".")


@dataclasses.dataclass(frozen=True, slots=True)
class Names:
    namespace: str = "ojs"

    # ------------------------------------------------------------ streams and buckets
    @property
    def prefix(self) -> str:
        return self.namespace.upper()

    @property
    def jobs_bucket(self) -> str:
        return f"{self.prefix}_JOBS"

    @property
    def jobs_stream(self) -> str:
        return f"KV_{self.jobs_bucket}"

    @property
    def queues_bucket(self) -> str:
        return f"{self.prefix}_QUEUES"

    @property
    def workers_bucket(self) -> str:
        return f"{self.prefix}_WORKERS"

    @property
    def cron_bucket(self) -> str:
        return f"{self.prefix}_CRON"

    @property
    def workflows_bucket(self) -> str:
        return f"{self.prefix}_WORKFLOWS"

    @property
    def schemas_bucket(self) -> str:
        return f"{self.prefix}_SCHEMAS"

    @property
    def unique_bucket(self) -> str:
        return f"{self.prefix}_UNIQUE"

    @property
    def limits_bucket(self) -> str:
        return f"{self.prefix}_LIMITS"

    @property
    def throughput_stream(self) -> str:
        return f"{self.prefix}_THROUGHPUT"

    @property
    def ready_stream(self) -> str:
        return f"{self.prefix}_READY"

    @property
    def timers_stream(self) -> str:
        return f"{self.prefix}_TIMERS"

    @property
    def events_stream(self) -> str:
        return f"{self.prefix}_EVENTS"

    @property
    def counters_stream(self) -> str:
        return f"{self.prefix}_COUNTERS"

    @property
    def dead_stream(self) -> str:
        return f"{self.prefix}_DEAD"

    def kv_subject(self, bucket: str, key: str) -> str:
        return f"$KV.{bucket}.{key}"

    # ------------------------------------------------------------ ready index
    def ready_subject(self, queue: str, priority: int) -> str:
        return f"{self.namespace}.ready.{encode_queue(queue)}.{priority}"

    def ready_filter(self, queue: str) -> str:
        return f"{self.namespace}.ready.{encode_queue(queue)}.*"

    def ready_consumer(self, queue: str, priority: int) -> str:
        sign = "n" if priority < 0 else "p"
        return f"ready_{encode_queue(queue)}_{sign}{abs(priority)}"

    # ------------------------------------------------------------ timers
    def timer_subject(self, kind: str, key: str) -> str:
        """Where the schedule of one timer lives: re-publishing replaces it."""
        return f"{self.namespace}.timers.at.{kind}.{key}"

    def timer_target(self, kind: str, key: str) -> str:
        """Where a timer lands when it fires."""
        return f"{self.namespace}.timers.fired.{kind}.{key}"

    @property
    def fired_filter(self) -> str:
        return f"{self.namespace}.timers.fired.>"

    timers_consumer = "fired"

    # ------------------------------------------------------------ events, counters, dead letter
    def event_subject(self, queue: str, event_type: str) -> str:
        return f"{self.namespace}.events.{encode_queue(queue)}.{event_type}"

    def worker_event_subject(self, event_type: str) -> str:
        """Worker events belong to no queue: they go under `_workers`, which no queue name
        encodes to (a queue name cannot start with a dot)."""
        return f"{self.namespace}.events._workers.{event_type}"

    def event_filter(self, queue: str | None, event_type: str | None) -> str:
        q = encode_queue(queue) if queue else "*"
        return f"{self.namespace}.events.{q}.{event_type or '>'}"

    def counter_subject(self, queue: str, state: str) -> str:
        return f"{self.namespace}.counts.{encode_queue(queue)}.{state}"

    def counter_filter(self, queue: str | None = None) -> str:
        q = encode_queue(queue) if queue else "*"
        return f"{self.namespace}.counts.{q}.*"

    def dead_subject(self, queue: str, job_id: str) -> str:
        return f"{self.namespace}.dead.{encode_queue(queue)}.{job_id}"

    def dead_filter(self, queue: str | None = None) -> str:
        q = encode_queue(queue) if queue else "*"
        return f"{self.namespace}.dead.{q}.*"

    # ------------------------------------------------------------ unique locks, limits, throughput
    def unique_subject(self, key: str) -> str:
        return self.kv_subject(self.unique_bucket, key)

    def rate_subject(self, partition: str) -> str:
        return self.kv_subject(self.limits_bucket, f"rate.{partition}")

    def slot_subject(self, partition: str, index: int) -> str:
        return self.kv_subject(self.limits_bucket, f"slot.{partition}.{index}")

    def slot_filter(self, partition: str) -> str:
        return self.kv_subject(self.limits_bucket, f"slot.{partition}.*")

    def throughput_subject(self, queue: str, kind: str, minute: int) -> str:
        return f"{self.namespace}.tput.{encode_queue(queue)}.{kind}.{minute}"

    def throughput_filter(self, queue: str) -> str:
        return f"{self.namespace}.tput.{encode_queue(queue)}.*.*"

    # ------------------------------------------------------------ control plane (core NATS)
    @property
    def control_subject(self) -> str:
        """Broadcast to every gateway replica (e.g. "state was reset, drop caches")."""
        return f"{self.namespace}.control"
