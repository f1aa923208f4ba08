"""The ready index: stream `<NS>_READY`, one entry per runnable job, subject per (queue, priority).

An entry carries the job id and the record step it was made for. A durable pull consumer per
(queue, priority) hands entries to concurrent fetchers without overlap; the highest priority that
has entries is asked first, and stream order gives FIFO within a priority. Entries are published
before the record says `available` (so a crash can leave a stale entry, never a job without one);
the fetcher checks every entry against the record and drops stale ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ojs_nats.model.ids import now_ms
from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.connection import Connection, JetStreamError, ack_metadata
from ojs_nats.storage.provision import ensure_consumer

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadyEntry:
    job_id: str
    step: int
    seq: int
    #: Milliseconds since the entry was stored.
    age_ms: int
    reply: str


class ReadyIndex:
    def __init__(self, conn: Connection, names: n.Names, batches: BatchReplies) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        self._consumers: set[tuple[str, int]] = set()
        self._creating: dict[tuple[str, int], asyncio.Future[None]] = {}
        #: Long-polling fetches waiting for entries, per queue, and the core NATS subscription
        #: that wakes them (held only while someone waits: see `watch`).
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._watches: dict[str, asyncio.Future[Subscription]] = {}

    @contextlib.asynccontextmanager
    async def watch(self, queues: list[str]) -> AsyncIterator[asyncio.Event]:
        """An event set when an entry is published for one of `queues`.

        Entering registers the interest before the caller looks at the queues, so an entry
        published in between is not missed. A JetStream publish is also delivered to core
        subscribers of its subject: while some fetch waits on a queue, this process subscribes
        to the queue's entry subjects, and drops the subscription when nobody waits any more
        (a busy queue, whose fetches never wait, costs no extra message). It may wake a
        little early (an atomic batch's entries arrive before their commit; any entry can reach a
        core subscriber before the stream has stored it) and never covers entries redelivered
        later (a NAK with a delay): callers look again soon after a wake, and on a timer.
        """
        event = asyncio.Event()
        try:
            for queue in queues:
                self._watchers.setdefault(queue, set()).add(event)
                if queue not in self._watches:  # one subscription, however many wait
                    self._watches[queue] = asyncio.ensure_future(self._subscribe(queue))
                await asyncio.shield(self._watches[queue])
            yield event
        finally:
            for queue in queues:
                waiting = self._watchers.get(queue)
                if waiting is None:
                    continue
                waiting.discard(event)
                if not waiting:
                    del self._watchers[queue]
                    subscribing = self._watches.pop(queue, None)
                    if subscribing is not None:
                        with contextlib.suppress(Exception):  # closing: nothing to undo
                            await (await subscribing).unsubscribe()

    async def _subscribe(self, queue: str) -> Subscription:
        async def published(_: Msg) -> None:
            for event in self._watchers.get(queue, ()):
                event.set()

        client = self._conn.client
        subscription = await client.subscribe(self._names.ready_filter(queue), cb=published)
        # The server registers the interest when it reads the SUB, not when nats-py returns:
        # without this round trip an entry published meanwhile woke nobody, and the job waited
        # for the long poll's recheck (~500 ms; seen in a CI run of test_worker_pickup).
        # Best effort: a connection in trouble only costs that recheck again.
        with contextlib.suppress(Exception):
            await client.flush(timeout=1)
        return subscription

    def forget(self) -> None:
        """Drop cached consumer handles (after a reset deleted them)."""
        self._consumers.clear()

    async def ensure_consumer(self, queue: str, priority: int) -> None:
        """Create the (queue, priority) consumer once per process.

        Concurrent first callers share one creation and resume in the order they called, so
        jobs enqueued together keep their order in the ready index (FIFO).
        """
        key = (queue, priority)
        if key in self._consumers:
            return
        creating = self._creating.get(key)
        if creating is None:
            creating = asyncio.ensure_future(
                ensure_consumer(
                    self._conn,
                    self._names.ready_stream,
                    self._names.ready_consumer(queue, priority),
                    self._names.ready_subject(queue, priority),
                )
            )
            self._creating[key] = creating
            creating.add_done_callback(lambda _: self._creating.pop(key, None))
        await asyncio.shield(creating)
        self._consumers.add(key)

    async def publish(self, queue: str, priority: int, job_id: str, step: int) -> int:
        """Add an entry; returns its stream sequence (kept in the record to delete it later)."""
        await self.ensure_consumer(queue, priority)
        payload = f"{job_id} {step}".encode()
        return await self._conn.store(self._names.ready_subject(queue, priority), payload)

    async def counts(self, queue: str) -> dict[int, int]:
        """Entries per priority for `queue` (one request, whatever the number of priorities)."""
        info = await self._conn.api(
            f"$JS.API.STREAM.INFO.{self._names.ready_stream}",
            {"subjects_filter": self._names.ready_filter(queue)},
        )
        subjects = (info.get("state") or {}).get("subjects") or {}
        return {
            int(subject.rsplit(".", 1)[1]): int(count)
            for subject, count in subjects.items()
            if count
        }

    async def pull(
        self, queue: str, priority: int, batch: int, wait_ms: int = 0
    ) -> list[ReadyEntry]:
        await self.ensure_consumer(queue, priority)
        try:
            msgs = await self._batches.pull(
                self._names.ready_stream,
                self._names.ready_consumer(queue, priority),
                batch,
                wait_ms,
            )
        except JetStreamError:
            log.warning("pull from ready consumer %s/%s failed", queue, priority, exc_info=True)
            return []
        return [entry for entry in map(_entry, msgs) if entry is not None]

    async def oldest(self, queue: str, after_seq: int, batch: int) -> list[tuple[str, int, int]]:
        """(job id, step, sequence) of the queue's oldest entries after `after_seq`, any priority
        (read without consuming them; some may be stale)."""
        msgs = await self._batches.get_many(
            self._names.ready_stream, self._names.ready_filter(queue), after_seq + 1, batch
        )
        found = []
        for msg in msgs:
            job_id, _, step = msg.data.decode().partition(" ")
            found.append((job_id, int(step), int((msg.headers or {}).get("Nats-Sequence", 0))))
        return found

    async def ack(self, entry: ReadyEntry) -> None:
        """The job was claimed (or the entry was stale): remove the entry."""
        await self._conn.publish(entry.reply, b"+ACK")

    async def retry_later(self, entry: ReadyEntry, delay_ms: int) -> None:
        """The record is not there yet: offer the entry again after `delay_ms`."""
        await self._conn.publish(entry.reply, b'-NAK {"delay": %d}' % (delay_ms * 1_000_000))

    async def delete(self, seq: int) -> None:
        """Remove the entry of a job that stopped being available (cancelled, expired)."""
        with contextlib.suppress(JetStreamError):  # already claimed or gone: nothing to delete
            await self._conn.api(
                f"$JS.API.STREAM.MSG.DELETE.{self._names.ready_stream}",
                {"seq": seq, "no_erase": True},
            )


def _entry(msg: Msg) -> ReadyEntry | None:
    try:
        job_id, step = msg.data.decode().split(" ", 1)
        seq, stamp_ns = ack_metadata(msg.reply)
        return ReadyEntry(
            job_id, int(step), seq, max(0, now_ms() - stamp_ns // 1_000_000), msg.reply
        )
    except (ValueError, IndexError):
        log.warning("malformed ready entry %r", msg.data[:80])
        return None
