"""Workflow records: KV bucket `<NS>_WORKFLOWS`, key = workflow id, compare-and-set writes.

Each workflow also has `<id>.specs`, its member job specs, written once at creation. Finished
workflows (both entries) carry a TTL like finished jobs.
"""

from __future__ import annotations

from typing import Any

import orjson

from ojs_nats.storage import names as n
from ojs_nats.storage.connection import Connection
from ojs_nats.storage.jobs import Stored


class WorkflowRecords:
    def __init__(self, conn: Connection, names: n.Names) -> None:
        self._conn = conn
        self._names = names

    @property
    def _stream(self) -> str:
        return f"KV_{self._names.workflows_bucket}"

    def _subject(self, workflow_id: str) -> str:
        return self._names.kv_subject(self._names.workflows_bucket, workflow_id)

    async def get(self, workflow_id: str) -> Stored | None:
        msg = await self._conn.direct_get(self._stream, self._subject(workflow_id))
        if msg is None or not msg.data:
            return None
        return Stored(orjson.loads(msg.data), int((msg.headers or {})["Nats-Sequence"]))

    async def get_specs(self, workflow_id: str) -> dict[str, Any] | None:
        stored = await self.get(f"{workflow_id}.specs")
        return stored.record if stored else None

    async def put_specs(
        self, workflow_id: str, specs: dict[str, Any], ttl_s: int | None = None
    ) -> None:
        """Write the specs (again, with a TTL once the workflow finished)."""
        headers = {n.MSG_TTL: f"{ttl_s}s"} if ttl_s else None
        await self._conn.store(self._subject(f"{workflow_id}.specs"), orjson.dumps(specs), headers)

    async def put(
        self, workflow_id: str, record: dict[str, Any], revision: int, ttl_s: int | None = None
    ) -> int:
        """Create (revision 0) or compare-and-set; raises `RevisionConflict` if it lost."""
        headers = {n.EXPECTED_LAST_SUBJECT_SEQ: str(revision)}
        if ttl_s:
            headers[n.MSG_TTL] = f"{ttl_s}s"
        return await self._conn.store(self._subject(workflow_id), orjson.dumps(record), headers)
