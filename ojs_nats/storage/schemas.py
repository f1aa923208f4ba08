"""Registered job argument schemas: KV bucket `<NS>_SCHEMAS`.

Two keys per schema, created together in one atomic batch: `<b64 uri>` holds the record and
`tv.<b64 type>.<b64 version>` claims its (type, version), so neither a URI nor a type+version
can be registered twice, whichever replica writes. Deletion purges the record, then deletes the
claim by compare-and-set; a claim left behind by a crash in between names a URI with no record
and is treated as free (the next registration overwrites it at its revision).

Each gateway keeps the whole registry compiled in memory (`catalog`) and re-reads it when it is
older than `REFRESH_S`, so a change made on one replica applies on every other one within
`REFRESH_S` plus one read; the writing replica applies its own changes at once.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import orjson

from ojs_nats.model import schemas
from ojs_nats.storage import kv
from ojs_nats.storage import names as n
from ojs_nats.storage.atomic import Message, publish_atomic
from ojs_nats.storage.batches import BatchReplies
from ojs_nats.storage.connection import Connection
from ojs_nats.storage.jobs import Stored

#: How old the in-memory catalog may get before an enqueue re-reads the bucket (the bound on
#: how long another replica's registration or deletion takes to apply here).
REFRESH_S = 1.0
_BATCH = 512


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def version_token(version: object) -> str:
    """The claim key's version: `1`, `"1.0"` and `"1.0.0"` are one version."""
    key = schemas.version_key(version)
    return _token(".".join(map(str, key)) if key else version)


class SchemaRegistry:
    def __init__(self, conn: Connection, names: n.Names, batches: BatchReplies) -> None:
        self._conn = conn
        self._names = names
        self._batches = batches
        self.catalog = schemas.Catalog()
        self._loaded_at = float("-inf")
        self._loading: asyncio.Future[schemas.Catalog] | None = None
        #: Bumped by every local change, so a read that started before it cannot mark the
        #: catalog fresh.
        self._changes = 0

    @property
    def _stream(self) -> str:
        return f"KV_{self._names.schemas_bucket}"

    def _subject(self, key: str) -> str:
        return self._names.kv_subject(self._names.schemas_bucket, key)

    def record_subject(self, uri: str) -> str:
        return self._subject(_token(uri))

    def claim_subject(self, job_type: str, version: object) -> str:
        return self._subject(f"tv.{_token(job_type)}.{version_token(version)}")

    # ------------------------------------------------------------ reads
    async def get(self, uri: str) -> Stored | None:
        msg = await self._conn.direct_get(self._stream, self.record_subject(uri))
        if msg is None or not msg.data:
            return None
        return Stored(orjson.loads(msg.data), int((msg.headers or {})["Nats-Sequence"]))

    async def claimant(self, job_type: str, version: object) -> str | None:
        """The URI that claims (type, version), if any."""
        msg = await self._conn.direct_get(self._stream, self.claim_subject(job_type, version))
        if msg is None or not msg.data:
            return None
        return str(orjson.loads(msg.data)["uri"])

    async def all(self) -> list[tuple[dict[str, Any], int]]:
        """Every record with its revision (claims are not listed: their keys have 4 tokens)."""
        found: list[tuple[dict[str, Any], int]] = []
        cursor = 0
        while True:
            msgs = await self._batches.get_many(
                self._stream, self._subject("*"), cursor + 1, _BATCH
            )
            for msg in msgs:
                cursor = int((msg.headers or {}).get("Nats-Sequence", cursor + 1))
                if msg.data:
                    found.append((orjson.loads(msg.data), cursor))
            if len(msgs) < _BATCH:
                return found

    # ------------------------------------------------------------ writes
    async def create(self, record: dict[str, Any], stale_claim: int = 0) -> int:
        """Store a new record and its claim atomically; the record's revision.

        Args:
            stale_claim: the revision of a claim left behind by a crash, to be overwritten.

        Raises:
            RevisionConflict: the URI or the (type, version) is taken (nothing was stored).
        """
        claim = orjson.dumps({"uri": record["uri"]})
        sequences = await publish_atomic(
            self._conn,
            [
                Message(
                    self.claim_subject(record["type"], record["version"]),
                    claim,
                    {n.EXPECTED_LAST_SUBJECT_SEQ: str(stale_claim)},
                ),
                Message(
                    self.record_subject(record["uri"]),
                    orjson.dumps(record),
                    {n.EXPECTED_LAST_SUBJECT_SEQ: "0"},
                ),
            ],
        )
        self._changed()
        return sequences[1]

    async def claim_revision(self, job_type: str, version: object) -> int:
        msg = await self._conn.direct_get(self._stream, self.claim_subject(job_type, version))
        return int((msg.headers or {})["Nats-Sequence"]) if msg is not None else 0

    async def delete(self, record: dict[str, Any]) -> None:
        """Remove a record (purged), then its claim by compare-and-set and only while it still
        names this record: a registration that took the (type, version) over in between (it
        found the claim stale) keeps its own claim."""
        purge = f"$JS.API.STREAM.PURGE.{self._stream}"
        await self._conn.api(purge, {"filter": self.record_subject(record["uri"])})
        self._changed()
        claim = await kv.read(
            self._conn, self._stream, self.claim_subject(record["type"], record["version"])
        )
        if claim.value is not None and claim.value.get("uri") == record["uri"]:
            await kv.remove(self._conn, claim.subject, claim.revision, marker_ttl_s=None)

    # ------------------------------------------------------------ the per-process catalog
    async def current(self) -> schemas.Catalog:
        """The catalog, re-read if older than REFRESH_S (concurrent callers share one read)."""
        if time.monotonic() - self._loaded_at < REFRESH_S:
            return self.catalog
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        loading = self._loading
        try:
            return await asyncio.shield(loading)
        finally:
            if self._loading is loading and loading.done():
                self._loading = None

    async def _load(self) -> schemas.Catalog:
        started, changes = time.monotonic(), self._changes
        catalog = schemas.Catalog.build(await self.all(), self.catalog)
        if changes == self._changes:
            self.catalog, self._loaded_at = catalog, started
        return catalog

    def _changed(self) -> None:
        """A local write: the next enqueue here re-reads (and compiles) the registry."""
        self._changes += 1
        self._loaded_at = float("-inf")

    def forget(self) -> None:
        self.catalog = schemas.Catalog()
        self._changed()
