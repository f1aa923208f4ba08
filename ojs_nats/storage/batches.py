"""Multi-message JetStream replies: consumer pulls and batched direct gets.

nats-py's pull subscription object is not safe to share between concurrent fetches. Here every
request gets its own short-lived inbox subscription (messages are routed by subscription id,
because JetStream delivers them under their stream subject), so any number of HTTP fetches can
pull from any consumers at once.
"""

from __future__ import annotations

import contextlib
import time

import nats.errors
import orjson
from nats.aio.msg import Msg

from ojs_nats.storage.connection import Connection, status_of

#: A pull with no_wait ends with a status message within a millisecond or two; this is only the
#: safety net for a reply that never comes (whatever arrived by then is returned).
REPLY_TIMEOUT_S = 5.0


class BatchReplies:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def _collect(self, subject: str, body: dict[str, object], limit: int) -> list[Msg]:
        client = self._conn.client
        inbox = client.new_inbox()
        sub = await client.subscribe(inbox)
        msgs: list[Msg] = []
        try:
            await self._conn.publish(subject, orjson.dumps(body), reply=inbox)
            deadline = time.monotonic() + REPLY_TIMEOUT_S
            while len(msgs) < limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    msg = await sub.next_msg(timeout=remaining)
                except (nats.errors.TimeoutError, nats.errors.ConnectionClosedError):
                    break
                if status_of(msg) is not None:
                    break
                msgs.append(msg)
        finally:
            # Closed, or already auto-unsubscribed: nothing to undo then.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return msgs

    async def pull(self, stream: str, consumer: str, batch: int, wait_ms: int = 0) -> list[Msg]:
        """Up to `batch` messages waiting for `consumer`: those there now, or, with `wait_ms`,
        those that arrive within that time (the server ends the request then)."""
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        body: dict[str, object] = {"batch": batch}
        if wait_ms:
            body["expires"] = wait_ms * 1_000_000
        else:
            body["no_wait"] = True
        return await self._collect(subject, body, batch)

    async def get_many(
        self, stream: str, subject_filter: str, start_seq: int, batch: int
    ) -> list[Msg]:
        """Up to `batch` stored messages matching `subject_filter`, from `start_seq` on."""
        body: dict[str, object] = {
            "seq": max(1, start_seq),
            "next_by_subj": subject_filter,
            "batch": batch,
        }
        return await self._collect(f"$JS.API.DIRECT.GET.{stream}", body, batch)

    async def get_since(
        self, stream: str, subject_filter: str, start_time: str, batch: int
    ) -> list[Msg]:
        """Up to `batch` stored messages matching `subject_filter`, the first stored at or after
        `start_time` (RFC 3339, the server's clock) and those after it."""
        body: dict[str, object] = {
            "start_time": start_time,
            "next_by_subj": subject_filter,
            "batch": batch,
        }
        return await self._collect(f"$JS.API.DIRECT.GET.{stream}", body, batch)

    async def get_last_many(self, stream: str, subjects: list[str]) -> list[Msg]:
        """The last message of each of `subjects` that has one, in one request."""
        body: dict[str, object] = {"multi_last": subjects, "batch": len(subjects)}
        return await self._collect(f"$JS.API.DIRECT.GET.{stream}", body, len(subjects))

    async def get_last_matching(self, stream: str, subject_filter: str, limit: int) -> list[Msg]:
        """The last message of every subject matching `subject_filter` (up to `limit`)."""
        body: dict[str, object] = {"multi_last": [subject_filter], "batch": limit}
        return await self._collect(f"$JS.API.DIRECT.GET.{stream}", body, limit)
