"""The pure side of the schema registry: registration checks, versions, which schema applies."""

import pytest

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model import schemas


@pytest.mark.parametrize(("version", "key"), [
    (1, (1, 0, 0)), ("1", (1, 0, 0)), ("1.0", (1, 0, 0)), ("1.0.0", (1, 0, 0)),
    ("2.10.3", (2, 10, 3)), ("01.0", None), ("1.0.0-rc.1", None), (True, None), (-1, None),
])
def test_version_key_orders_by_semver_and_equates_short_forms(version, key):
    assert schemas.version_key(version) == key


def test_registration_defaults_the_uri_and_accepts_job_type():
    definition = schemas.parse_registration(
        {"job_type": "a.b", "version": "2.0.0", "schema": {"type": "array"}})
    assert definition.uri == "urn:ojs:schema:a.b:v2.0.0"
    assert definition.type == "a.b"


@pytest.mark.parametrize("schema", [
    {"type": 5},
    {"$schema": "http://json-schema.org/draft-07/schema#"},
    {"items": {"$ref": "other.json#/x"}},
])
def test_invalid_schema_names_the_reason(schema):
    with pytest.raises(InvalidRequestError) as caught:
        schemas.parse_registration({"type": "a.b", "version": 1, "schema": schema})
    assert caught.value.details["schema_error"]


def test_local_refs_are_accepted():
    schemas.check_schema({"$defs": {"s": {"type": "string"}}, "items": {"$ref": "#/$defs/s"}})


def catalog(*records):
    return schemas.Catalog.build(((r, i) for i, r in enumerate(records, 1)), schemas.Catalog())


def record(uri, version, schema):
    return {"uri": uri, "type": "a.b", "version": version, "schema": schema,
            "created_at": "2026-01-01T00:00:00.000Z"}


def test_applicable_schema_by_uri_version_or_latest():
    known = catalog(record("urn:v1", 1, {}), record("urn:v2", "2.0", {}))
    assert known.applicable({"type": "a.b"}).uri == "urn:v2"
    assert known.applicable({"type": "a.b", "version": "1.0.0"}).uri == "urn:v1"
    assert known.applicable({"type": "a.b", "schema": "urn:v1"}).uri == "urn:v1"
    assert isinstance(known.applicable({"type": "a.b", "version": "3"}), str)
    assert isinstance(known.applicable({"type": "x.y", "schema": "urn:none"}), str)
    assert known.applicable({"type": "x.y"}) is None


def test_unchanged_entries_keep_their_compiled_validator():
    first = catalog(record("urn:v1", 1, {"maxItems": 1}))
    again = schemas.Catalog.build([(record("urn:v1", 1, {"maxItems": 1}), 1)], first)
    assert again.by_uri["urn:v1"].validator is first.by_uri["urn:v1"].validator
    changed = schemas.Catalog.build([(record("urn:v1", 1, {"maxItems": 1}), 7)], first)
    assert changed.by_uri["urn:v1"].validator is not first.by_uri["urn:v1"].validator


def test_violations_point_into_args():
    validator = schemas.compile_validator(
        {"prefixItems": [{"type": "object", "properties": {"to": {"format": "email"}}}]})
    found = schemas.violations(validator, [{"to": "nope"}])
    assert [v["path"] for v in found] == ["$.args[0].to"]
    assert schemas.violations(validator, [{"to": "a@b.c"}]) == []
