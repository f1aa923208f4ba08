"""Compare-and-set JSON entries in a KV bucket, over the raw JetStream wire API. An entry's
revision is the stream sequence of its last message; a deleted or expired entry reads as "no
value" with its marker's revision, which is what the next create must expect.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from nats.aio.msg import Msg

from ojs_nats.storage import names as n
from ojs_nats.storage.connection import Connection, RevisionConflict

#: How long the marker of a deleted entry stays (it only matters to a concurrent writer).
MARKER_TTL_S = 300


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    value: dict[str, Any] | None
    revision: int
    subject: str


def decode(msg: Msg | None, subject: str) -> Entry:
    if msg is None:
        return Entry(None, 0, subject)
    headers = msg.headers or {}
    revision = int(headers.get("Nats-Sequence", 0))
    subject = str(headers.get("Nats-Subject", subject))
    if not msg.data or headers.get(n.KV_OPERATION) in ("DEL", "PURGE"):
        return Entry(None, revision, subject)
    return Entry(orjson.loads(msg.data), revision, subject)


async def read(conn: Connection, stream: str, subject: str) -> Entry:
    return decode(await conn.direct_get(stream, subject), subject)


async def write(
    conn: Connection, subject: str, value: dict[str, Any], expected: int, ttl_s: int | None = None
) -> int:
    """Store `value` if the entry is still at `expected` (0: never written); new revision.

    Raises:
        RevisionConflict: someone else wrote the entry first.
    """
    headers = {n.EXPECTED_LAST_SUBJECT_SEQ: str(expected)}
    if ttl_s:
        headers[n.MSG_TTL] = f"{ttl_s}s"
    return await conn.store(subject, orjson.dumps(value), headers)


async def remove(
    conn: Connection, subject: str, expected: int, marker_ttl_s: int | None = MARKER_TTL_S
) -> bool:
    """Delete the entry if it is still at `expected`; False if it changed meanwhile.

    `marker_ttl_s` (buckets with per-message TTL only) lets the deletion marker itself expire.
    """
    headers = {n.EXPECTED_LAST_SUBJECT_SEQ: str(expected), n.KV_OPERATION: "DEL"}
    if marker_ttl_s:
        headers[n.MSG_TTL] = f"{marker_ttl_s}s"
    try:
        await conn.store(subject, b"", headers)
    except RevisionConflict:
        return False
    return True
