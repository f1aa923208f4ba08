"""Job argument schemas (ojs-http-binding.md §15, ojs-schema-registry.md): the registration
document, its checks (a JSON Schema draft 2020-12 object), version ordering, and the catalog a
gateway validates `args` against at enqueue. Pure: no I/O, no clock (`jsonschema` never fetches
a `$ref`, and only local ones are accepted).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
import jsonschema.exceptions
from jsonschema.protocols import Validator

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model.envelope import TYPE_RE

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
#: `version` as a string: SemVer's `major.minor.patch`, or a shorter prefix (job versioning's
#: `2.0`); as an integer, the HTTP binding's `1`. Pre-release suffixes are not accepted.
VERSION_RE = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*)){0,2}$")
MAX_URI_LEN = 512
#: Most violations listed in one rejection (the first ones found).
MAX_REPORTED = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Definition:
    """A validated registration: what is stored, less `created_at`."""

    uri: str
    type: str
    version: int | str
    schema: dict[str, Any]

    def record(self, created_at: str) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "type": self.type,
            "version": self.version,
            "schema": self.schema,
            "created_at": created_at,
        }


def parse_registration(body: Mapping[str, Any]) -> Definition:
    """Check a `POST /schemas` body. `job_type` (schema registry §4.1) is read as `type`.

    Raises:
        InvalidRequestError: a field is missing or malformed, or `schema` is not a valid JSON
            Schema draft 2020-12 document (details.schema_error says why, HTTP binding §15.2).
    """
    known = {"uri", "type", "job_type", "version", "schema"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequestError(f"Unknown field '{unknown[0]}'.", field=unknown[0])
    job_type = body.get("type", body.get("job_type"))
    if not isinstance(job_type, str) or len(job_type) > 255 or not TYPE_RE.match(job_type):
        raise InvalidRequestError(
            "The 'type' field (a dot-namespaced job type) is required.", field="type"
        )
    version = parse_version(body.get("version"))
    uri = body.get("uri")
    if uri is None:
        uri = f"urn:ojs:schema:{job_type}:v{version}"
    if not isinstance(uri, str) or not valid_uri(uri):
        raise InvalidRequestError(
            "The 'uri' field must be an absolute URI (e.g. urn:ojs:schema:email.send:v1).",
            field="uri",
        )
    schema = body.get("schema")
    if not isinstance(schema, Mapping):
        raise InvalidRequestError(
            "The 'schema' field (a JSON Schema object) is required.", field="schema"
        )
    check_schema(schema)
    return Definition(uri=uri, type=job_type, version=version, schema=dict(schema))


def valid_uri(value: str) -> bool:
    """An absolute URI: a scheme, then no spaces (what tells it from a job type in a path)."""
    return (
        0 < len(value) <= MAX_URI_LEN
        and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value) is not None
    )


def parse_version(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and VERSION_RE.match(value):
        return value
    raise InvalidRequestError(
        "The 'version' field is required: a non-negative integer or a version such as '1.2.0'.",
        field="version",
    )


def version_key(version: object) -> tuple[int, int, int] | None:
    """SemVer precedence (§6.3) of a schema or job version, `1` == `"1.0"` == `"1.0.0"`;
    None if it is not a version."""
    if isinstance(version, int) and not isinstance(version, bool) and version >= 0:
        return (version, 0, 0)
    if not isinstance(version, str) or not VERSION_RE.match(version):
        return None
    parts = [int(p) for p in version.split(".")] + [0, 0]
    return (parts[0], parts[1], parts[2])


def check_schema(schema: Mapping[str, Any]) -> None:
    """A valid draft 2020-12 document whose `$ref`s stay inside it."""
    declared = schema.get("$schema", DRAFT_2020_12)
    if str(declared).rstrip("#") != DRAFT_2020_12:
        raise _invalid_schema("$schema must reference draft 2020-12")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise _invalid_schema(f"{exc.message}" + (f" (at /{where})" if where else "")) from exc
    for ref in _refs(schema):
        if not ref.startswith("#"):
            raise _invalid_schema(f"only local $ref values ('#...') are supported, not '{ref}'")


def _refs(node: object) -> Iterable[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _invalid_schema(reason: str) -> InvalidRequestError:
    return InvalidRequestError(
        "The provided JSON Schema is not valid draft 2020-12.", field="schema", schema_error=reason
    )


def compile_validator(schema: Mapping[str, Any]) -> Validator:
    validator: Validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator


def violations(validator: Validator, args: list[Any]) -> list[dict[str, str]]:
    """What is wrong with `args`, as json-format §12.4's `validation_errors` (empty: valid)."""
    found = []
    for error in validator.iter_errors(args):
        path = "$.args" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        schema_path = "#/" + "/".join(str(p) for p in error.absolute_schema_path)
        found.append({"path": path, "message": error.message, "schema_path": schema_path})
        if len(found) >= MAX_REPORTED:
            break
    return found


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    record: dict[str, Any]
    #: The stream sequence it was read at: a compiled validator is reused while it holds.
    revision: int
    validator: Validator

    @property
    def uri(self) -> str:
        return str(self.record["uri"])


@dataclasses.dataclass(frozen=True, slots=True)
class Catalog:
    """Every registered schema, by URI and by job type (newest version first)."""

    by_uri: dict[str, Entry] = dataclasses.field(default_factory=dict)
    by_type: dict[str, list[Entry]] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, stored: Iterable[tuple[dict[str, Any], int]], previous: Catalog) -> Catalog:
        """From (record, revision) pairs; validators of unchanged entries are kept."""
        by_uri: dict[str, Entry] = {}
        for record, revision in stored:
            old = previous.by_uri.get(str(record["uri"]))
            if old is not None and old.revision == revision:
                by_uri[old.uri] = old
            else:
                entry = Entry(record, revision, compile_validator(record["schema"]))
                by_uri[entry.uri] = entry
        by_type: dict[str, list[Entry]] = {}
        for entry in by_uri.values():
            by_type.setdefault(str(entry.record["type"]), []).append(entry)
        for entries in by_type.values():
            entries.sort(key=lambda e: version_key(e.record["version"]) or (0, 0, 0), reverse=True)
        return cls(by_uri, by_type)

    def versions(self, job_type: str) -> list[Entry]:
        return self.by_type.get(job_type, [])

    def applicable(self, job: Mapping[str, Any]) -> Entry | str | None:
        """The schema a job's args must match: the one its `schema` URI names, else the one
        registered for its type and `version`, else its type's latest. A string says why no
        schema can be applied though one must (unknown URI, unregistered version); None: the
        job's type has no schema and it names none.
        """
        uri = job.get("schema")
        if isinstance(uri, str):
            return self.by_uri.get(uri) or f"schema '{uri}' is not registered"
        entries = self.versions(str(job.get("type")))
        if not entries:
            return None
        if job.get("version") is None:
            return entries[0]
        wanted = version_key(job["version"])
        for entry in entries:
            if wanted is not None and version_key(entry.record["version"]) == wanted:
                return entry
        return f"no schema is registered for {job.get('type')} version {job['version']!r}"
