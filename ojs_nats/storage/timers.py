"""Durable timers on JetStream message schedules (stream `<NS>_TIMERS`, nats-server >= 2.12).

A timer is a message on `<ns>.timers.at.<kind>.<key>` with `Nats-Schedule: @at <time>`; one
subject holds one schedule, so arming again replaces it and purging the subject disarms it. When
the time comes the server writes the body to `<ns>.timers.fired.<kind>.<key>`, where one durable
consumer, shared by every gateway replica, hands each fired timer to exactly one of them; it is
acked only after it was handled, so a replica dying mid-way means redelivery, not loss.

Precision: the server's scheduler runs at most every 250 ms, and fires up to ~300 ms late on an
idle server, ~450 ms late under S5's load (measured here). So a timer is scheduled `LEAD_MS`
early (or, when due sooner than that, published straight to its fired subject); the runner holds
one that arrives early in memory until due, and a handler hands one that is not yet due back with
`again_in(due - now)`. Every handler must therefore check the time itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ojs_nats.model.ids import format_ts, now_ms
from ojs_nats.storage import names as n
from ojs_nats.storage.connection import Connection, JetStreamError, ack_metadata, status_of

log = logging.getLogger(__name__)

#: Fired timers asked for per pull request, and how long such a request waits on the server.
PULL_BATCH = 200
PULL_EXPIRES_S = 5.0
#: Schedules are set this much before the real due time (see the module docstring).
LEAD_MS = 600
MIN_REQUEST_INTERVAL_S = 0.02


@dataclasses.dataclass(frozen=True, slots=True)
class FiredTimer:
    kind: str
    key: str
    #: When it was due (epoch ms) and what the arming side attached.
    due_ms: int
    data: dict[str, Any]
    reply: str

    @property
    def age_ms(self) -> int:
        """Milliseconds since the timer fired."""
        try:
            return max(0, now_ms() - ack_metadata(self.reply)[1] // 1_000_000)
        except (ValueError, IndexError):
            return 0


class Timers:
    def __init__(self, conn: Connection, names: n.Names) -> None:
        self._conn = conn
        self._names = names

    async def arm(
        self, kind: str, key: str, at_ms: int, data: dict[str, Any] | None = None
    ) -> None:
        """Fire at about `at_ms` (epoch ms, possibly up to LEAD_MS early: see `FiredTimer.due_ms`);
        replaces any earlier timer of the same kind and key."""
        body = orjson.dumps({"due": at_ms, **(data or {})})
        target = self._names.timer_target(kind, key)
        if at_ms - now_ms() <= LEAD_MS:
            await self._conn.store(target, body)  # due almost now: fire at once
            return
        headers = {n.SCHEDULE: "@at " + format_ts(at_ms - LEAD_MS), n.SCHEDULE_TARGET: target}
        await self._conn.store(self._names.timer_subject(kind, key), body, headers)

    async def disarm(self, kind: str, key: str) -> None:
        try:
            await self._conn.api(
                f"$JS.API.STREAM.PURGE.{self._names.timers_stream}",
                {"filter": self._names.timer_subject(kind, key)},
            )
        except JetStreamError:
            log.debug("disarm %s/%s failed", kind, key, exc_info=True)

    async def disarm_all(self, kind: str, prefix: str) -> None:
        """Disarm every timer `<kind>.<prefix>.<one more token>` (e.g. all ticks of a cron)."""
        try:
            await self._conn.api(
                f"$JS.API.STREAM.PURGE.{self._names.timers_stream}",
                {"filter": self._names.timer_subject(kind, f"{prefix}.*")},
            )
        except JetStreamError:
            log.debug("disarm_all %s/%s failed", kind, prefix, exc_info=True)

    async def done(self, timer: FiredTimer) -> None:
        await self._conn.publish(timer.reply, b"+ACK")

    async def again_in(self, timer: FiredTimer, delay_ms: int) -> None:
        """Hand the fired timer back to be delivered again after `delay_ms`."""
        delay_ns = max(1, delay_ms) * 1_000_000
        await self._conn.publish(timer.reply, b'-NAK {"delay": %d}' % delay_ns)

    def feed(self) -> TimerFeed:
        return TimerFeed(self._conn, self._names)


class TimerFeed:
    """A continuous pull of fired timers into an asyncio queue, for the timer runner."""

    def __init__(self, conn: Connection, names: n.Names) -> None:
        self._conn = conn
        self._names = names
        self._inbox = conn.client.new_inbox()
        self.queue: asyncio.Queue[FiredTimer] = asyncio.Queue()
        self._sub: Subscription | None = None
        self._since_request = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()

    async def take(self) -> FiredTimer:
        """The next fired timer (waits for one)."""
        timer = await self.queue.get()
        if self.queue.qsize() < PULL_BATCH:
            self._room.set()
        return timer

    async def _on_msg(self, msg: Msg) -> None:
        status = status_of(msg)
        if status is not None:
            # The pull request ended (408 expired, 409 purged/limits...): ask again at once, so
            # there is always a request waiting on the server when a timer fires.
            log.debug("timer pull request ended with status %s", status)
            self._wake.set()
            return
        prefix = self._names.fired_filter[:-1]
        kind, _, key = msg.subject[len(prefix) :].partition(".")
        try:
            data = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            data = {}
        due = int(data.pop("due", 0)) if isinstance(data, dict) else 0
        self.queue.put_nowait(
            FiredTimer(kind, key, due, data if isinstance(data, dict) else {}, msg.reply)
        )
        self._since_request += 1
        if self._since_request >= PULL_BATCH // 2:
            self._wake.set()

    async def run(self) -> None:
        """Keep pull requests outstanding until cancelled."""
        self._sub = await self._conn.client.subscribe(self._inbox, cb=self._on_msg)
        subject = (
            f"$JS.API.CONSUMER.MSG.NEXT.{self._names.timers_stream}.{self._names.timers_consumer}"
        )
        body = orjson.dumps({"batch": PULL_BATCH, "expires": int(PULL_EXPIRES_S * 1e9)})
        try:
            while True:
                # Flow control: fired timers wait here only briefly, well inside the
                # consumer's redelivery time, even when a burst fires at once.
                while self.queue.qsize() >= PULL_BATCH:
                    self._room.clear()
                    await self._room.wait()
                self._since_request = 0
                self._wake.clear()
                if self._conn.connected:
                    try:
                        await self._conn.publish(subject, body, reply=self._inbox)
                    except Exception:  # reconnecting: try again shortly
                        log.debug("timer pull request failed", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), PULL_EXPIRES_S * 0.9)
                await asyncio.sleep(MIN_REQUEST_INTERVAL_S)  # never spin on an error status
        finally:
            with contextlib.suppress(Exception):  # the connection may be closed already
                await self._sub.unsubscribe()
