"""Schema registry use cases (ojs-http-binding.md §15, ojs-schema-registry.md §4) and the
validation of job args at enqueue (ojs-core.md §7.1 step 7, schema registry §7.3), used by
PUSH and batch PUSH before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ojs_nats.errors import ConflictError, InvalidRequestError, NotFoundError, SchemaValidationError
from ojs_nats.model import ids, schemas
from ojs_nats.model.envelope import Submission
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict

_SUMMARY = ("uri", "type", "version", "created_at")


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record without its document, as lists show it (HTTP binding §15.1)."""
    return {key: record[key] for key in _SUMMARY}


def full(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as GET shows it; `job_type` repeats `type` (schema registry §4.2's name)."""
    return {**summary(record), "job_type": record["type"], "schema": record["schema"]}


async def register(ctx: Context, body: Mapping[str, Any]) -> dict[str, Any]:
    """Store a new schema. 409 when its URI or its (type, version) is registered already."""
    definition = schemas.parse_registration(body)
    record = definition.record(ids.format_ts(ctx.clock()))
    registry = ctx.storage.schemas
    stale = 0
    for _ in range(2):
        try:
            await registry.create(record, stale_claim=stale)
            return full(record)
        except RevisionConflict:
            if await registry.get(definition.uri) is not None:
                raise ConflictError(
                    f"A schema with uri '{definition.uri}' is already registered.",
                    uri=definition.uri,
                ) from None
            holder = await registry.claimant(definition.type, definition.version)
            if holder is not None and await registry.get(holder) is not None:
                raise ConflictError(
                    f"A schema for {definition.type} version {definition.version} is already"
                    f" registered (uri '{holder}').",
                    type=definition.type,
                    version=definition.version,
                    uri=holder,
                ) from None
            # The claim outlived its record (a crash between the two purges of a deletion).
            stale = await registry.claim_revision(definition.type, definition.version)
    raise ConflictError("The schema registry changed meanwhile; retry.")


async def get(ctx: Context, uri: str) -> dict[str, Any]:
    stored = await ctx.storage.schemas.get(uri)
    if stored is None:
        raise NotFoundError(f"No schema with uri '{uri}' is registered.", uri=uri)
    return stored.record


async def _versions(ctx: Context, job_type: str) -> list[dict[str, Any]]:
    """The type's records, newest version first (SemVer precedence, schema registry §6.3)."""
    records = [r for r, _ in await ctx.storage.schemas.all() if r["type"] == job_type]
    if not records:
        raise NotFoundError(f"No schema is registered for job type '{job_type}'.", type=job_type)
    records.sort(key=lambda r: schemas.version_key(r["version"]) or (0, 0, 0), reverse=True)
    return records


async def latest(ctx: Context, job_type: str) -> dict[str, Any]:
    return (await _versions(ctx, job_type))[0]


async def versions(ctx: Context, job_type: str) -> list[dict[str, Any]]:
    records = await _versions(ctx, job_type)
    return [
        {
            "version": r["version"],
            "uri": r["uri"],
            "created_at": r["created_at"],
            "is_latest": i == 0,
        }
        for i, r in enumerate(records)
    ]


async def of_version(ctx: Context, job_type: str, version: str) -> dict[str, Any]:
    wanted = schemas.version_key(version)
    if wanted is None:
        raise InvalidRequestError(f"'{version}' is not a version.", field="version")
    for record in await _versions(ctx, job_type):
        if schemas.version_key(record["version"]) == wanted:
            return record
    raise NotFoundError(
        f"No schema is registered for {job_type} version {version}.",
        type=job_type,
        version=version,
    )


async def list_all(ctx: Context) -> list[dict[str, Any]]:
    return [summary(r) for r, _ in await ctx.storage.schemas.all()]


async def remove(ctx: Context, record: dict[str, Any]) -> None:
    await ctx.storage.schemas.delete(record)


# ---------------------------------------------------------------- enqueue validation
async def catalog(ctx: Context) -> schemas.Catalog:
    """The registry as this process knows it (at most `storage.schemas.REFRESH_S` old)."""
    return await ctx.storage.schemas.current()


def check(known: schemas.Catalog, submission: Submission) -> None:
    """Raise unless the job's args conform to the schema that applies to it, if any."""
    job = submission.job
    found = known.applicable(job)
    if found is None:
        return
    if isinstance(found, str):
        raise SchemaValidationError(
            f"The job's args cannot be validated: {found}.",
            schema=job.get("schema"),
            type=job["type"],
            version=job.get("version"),
        )
    problems = schemas.violations(found.validator, job["args"])
    if problems:
        record = found.record
        raise SchemaValidationError(
            f"Job arguments do not match schema {record['uri']}"
            f" ({record['type']} version {record['version']}).",
            schema=record["uri"],
            type=record["type"],
            version=record["version"],
            validation_errors=problems,
        )
