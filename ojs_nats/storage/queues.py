"""Queue registry and settings: KV bucket `<NS>_QUEUES`, key = queue name.

Each entry holds the queue's settings (paused, limits, ...) and when it was first seen. Every
gateway keeps a local mirror, fed by a KV watch, so a fetch reads "is this queue paused" without
a round trip; writers update the mirror at once, and other replicas within milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy

from ojs_nats.storage import kv
from ojs_nats.storage import names as n
from ojs_nats.storage.connection import Connection, RevisionConflict

log = logging.getLogger(__name__)


class QueueSettings:
    def __init__(self, conn: Connection, names: n.Names) -> None:
        self._conn = conn
        self._names = names
        self.mirror: dict[str, dict[str, Any]] = {}
        self._sub: Subscription | None = None
        self._known: set[str] = set()

    # ------------------------------------------------------------ mirror
    async def start(self) -> None:
        """Load every entry and follow changes (an ordered push consumer over the bucket)."""
        js = self._conn.client.jetstream()
        self._sub = await js.subscribe(
            f"$KV.{self._names.queues_bucket}.>",
            cb=self._on_change,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            stream=f"KV_{self._names.queues_bucket}",
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_change(self, msg: Msg) -> None:
        name = msg.subject.split(".", 2)[2]
        operation = (msg.headers or {}).get("KV-Operation")
        if operation in ("DEL", "PURGE") or not msg.data:
            self.mirror.pop(name, None)
            self._known.discard(name)
        else:
            self.mirror[name] = orjson.loads(msg.data)
            self._known.add(name)

    def forget(self) -> None:
        self.mirror.clear()
        self._known.clear()

    def settings(self, queue: str) -> dict[str, Any]:
        return self.mirror.get(queue, {})

    # ------------------------------------------------------------ writes
    def _subject(self, queue: str) -> str:
        return self._names.kv_subject(self._names.queues_bucket, queue)

    async def register(self, queue: str, created_at: str) -> None:
        """Record that `queue` exists (first enqueue); one round trip per queue per process."""
        if queue in self._known:
            return
        record = {"name": queue, "created_at": created_at}
        try:
            await self._conn.store(
                self._subject(queue), orjson.dumps(record), {n.EXPECTED_LAST_SUBJECT_SEQ: "0"}
            )
            self.mirror.setdefault(queue, record)
        except RevisionConflict:
            current = await self.entry(queue)
            if current.value is None:  # deleted earlier: its marker is what to expect
                with contextlib.suppress(RevisionConflict):
                    await kv.write(self._conn, self._subject(queue), record, current.revision)
                    self.mirror.setdefault(queue, record)
        self._known.add(queue)

    async def entry(self, queue: str) -> kv.Entry:
        """The queue's entry with its revision (absent: no value, the marker's revision)."""
        return await kv.read(self._conn, f"KV_{self._names.queues_bucket}", self._subject(queue))

    async def remove(self, queue: str, revision: int) -> bool:
        """Delete the queue's entry if it is still at `revision`."""
        removed = await kv.remove(self._conn, self._subject(queue), revision, marker_ttl_s=None)
        if removed:
            self.mirror.pop(queue, None)
            self._known.discard(queue)
        return removed

    async def get(self, queue: str) -> tuple[dict[str, Any], int] | None:
        msg = await self._conn.direct_get(f"KV_{self._names.queues_bucket}", self._subject(queue))
        if msg is None or not msg.data:
            return None
        return orjson.loads(msg.data), int((msg.headers or {})["Nats-Sequence"])

    async def put(self, queue: str, record: dict[str, Any], revision: int) -> None:
        """Compare-and-set a queue's settings and update the local mirror at once."""
        await self._conn.store(
            self._subject(queue), orjson.dumps(record), {n.EXPECTED_LAST_SUBJECT_SEQ: str(revision)}
        )
        self.mirror[queue] = record
        self._known.add(queue)
