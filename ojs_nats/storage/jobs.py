"""Job records in the KV bucket `<NS>_JOBS`, key = job id, every write a compare-and-set.

The record's revision is the stream sequence of its last write; `update` succeeds only if the
record is still at the revision it was read at, so two replicas can never both apply a transition.
Finished records carry a per-message TTL and disappear after the retention period.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

import orjson

from ojs_nats.storage import kv
from ojs_nats.storage import names as n
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.connection import Connection, RevisionConflict


@dataclasses.dataclass(slots=True)
class Stored:
    """A record as read, with the revision a later update must expect."""

    record: dict[str, Any]
    revision: int


#: Subjects per multi-subject direct get (the server accepts up to 1,024).
MULTI_GET_LIMIT = 500
#: Records this process wrote last that it remembers (`recent`), about their JSON size each
#: (~0.4-1 KiB). Enough to cover the jobs a busy process has handed out and not yet seen
#: acknowledged; a job enqueued here and claimed by another process stays until pushed out.
RECENT_WRITES = 4096


class JobRecords:
    def __init__(self, conn: Connection, names: n.Names, batches: BatchReplies) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        #: job id -> (payload, revision) of this process's last write of it, oldest first.
        self._recent: OrderedDict[str, tuple[bytes, int]] = OrderedDict()

    def recent(self, job_id: str) -> Stored | None:
        """The record as this process last wrote it, without a round trip, or None.

        Another process may have changed it since: only for a compare-and-set, which fails
        (`RevisionConflict`) unless this is still the stored record. A fetched job's ACK most
        often reaches the process that handed it out, so its transition needs no read.
        """
        written = self._recent.get(job_id)
        if written is None:
            return None
        return Stored(orjson.loads(written[0]), written[1])

    def forget(self) -> None:
        """Drop what `recent` remembers (after a reset wiped the records)."""
        self._recent.clear()

    def _remember(self, job_id: str, payload: bytes, revision: int) -> None:
        recent = self._recent
        # An exact-size copy: orjson's output keeps its ~4 KiB working buffer, which, held for
        # thousands of jobs, showed as ~100 MiB of gateway RSS growth in the soak.
        recent[job_id] = (bytes(memoryview(payload)), revision)
        recent.move_to_end(job_id)
        if len(recent) > RECENT_WRITES:
            recent.popitem(last=False)  # O(1), where deleting a dict's first key is not

    def _subject(self, job_id: str) -> str:
        return self._names.kv_subject(self._names.jobs_bucket, job_id)

    async def get(self, job_id: str) -> Stored | None:
        msg = await self._conn.direct_get(self._names.jobs_stream, self._subject(job_id))
        if msg is None or not msg.data:
            return None  # absent, deleted or expired
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE"):
            return None
        return Stored(orjson.loads(msg.data), int(headers["Nats-Sequence"]))

    async def get_many(self, job_ids: list[str]) -> dict[str, Stored]:
        """Several records in one request (absent, deleted or expired ones are left out)."""
        found: dict[str, Stored] = {}
        prefix = self._names.kv_subject(self._names.jobs_bucket, "")
        for start in range(0, len(job_ids), MULTI_GET_LIMIT):
            subjects = [self._subject(j) for j in job_ids[start : start + MULTI_GET_LIMIT]]
            for msg in await self._batches.get_last_many(self._names.jobs_stream, subjects):
                headers = msg.headers or {}
                if not msg.data or headers.get("KV-Operation") in ("DEL", "PURGE"):
                    continue
                job_id = str(headers.get("Nats-Subject", ""))[len(prefix) :]
                found[job_id] = Stored(orjson.loads(msg.data), int(headers["Nats-Sequence"]))
        return found

    async def entry(self, job_id: str) -> kv.Entry:
        """The record as a KV entry: absent ones carry the revision a create must expect."""
        return await kv.read(self._conn, self._names.jobs_stream, self._subject(job_id))

    async def create(self, job_id: str, record: dict[str, Any], ttl_s: int | None = None) -> int:
        """Store a new record; raises `RevisionConflict` if the id is taken."""
        try:
            return await self._write(job_id, record, 0, ttl_s)
        except RevisionConflict:
            # A deleted or expired record leaves a marker; the id is free again then.
            existing = await self._conn.direct_get(self._names.jobs_stream, self._subject(job_id))
            if existing is None or not existing.data:
                seq = int((existing.headers or {}).get("Nats-Sequence", 0)) if existing else 0
                if seq:
                    return await self._write(job_id, record, seq, ttl_s)
            raise

    async def update(
        self, job_id: str, record: dict[str, Any], revision: int, ttl_s: int | None = None
    ) -> int:
        """Replace the record if it is still at `revision`; returns the new revision."""
        return await self._write(job_id, record, revision, ttl_s)

    async def delete_at(self, job_id: str, revision: int) -> None:
        """Delete the record if it is still at `revision`; raises `RevisionConflict` if not."""
        headers = {n.EXPECTED_LAST_SUBJECT_SEQ: str(revision), n.KV_OPERATION: "DEL"}
        await self._conn.store(self._subject(job_id), b"", headers)
        await self.delete(job_id)  # the marker too, as `delete` leaves nothing behind

    async def delete(self, job_id: str) -> None:
        self._recent.pop(job_id, None)
        await self._conn.api(
            f"$JS.API.STREAM.PURGE.{self._names.jobs_stream}", {"filter": self._subject(job_id)}
        )

    async def _write(
        self, job_id: str, record: dict[str, Any], expected: int, ttl_s: int | None
    ) -> int:
        headers = {n.EXPECTED_LAST_SUBJECT_SEQ: str(expected)}
        if ttl_s:
            headers[n.MSG_TTL] = f"{ttl_s}s"
        payload = orjson.dumps(record)
        try:
            revision = await self._conn.store(self._subject(job_id), payload, headers)
        except BaseException:
            self._recent.pop(job_id, None)  # what we remember is not what is stored
            raise
        if ttl_s:
            self._recent.pop(job_id, None)  # finished: rarely written again, leave the room
        else:
            self._remember(job_id, payload, revision)
        return revision
