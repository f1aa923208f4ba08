"""Offline validation of Kubernetes manifests, for the chart tests.

Built-in kinds are checked against the OpenAPI schemas that ship inside the
`kubernetes-validate` wheel (strict: unknown fields are errors). Custom resources are checked
against the `openAPIV3Schema` of a CRD given alongside them, with jsonschema. Kinds with neither
(KEDA, Prometheus Operator) are reported, never passed silently; callers decide what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

Doc = dict[str, Any]


def load_all(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def crd_schemas(docs: Iterable[Doc]) -> dict[tuple[str, str], Doc]:
    """(apiVersion, kind) -> JSON schema, for every version of every CRD among `docs`."""
    found: dict[tuple[str, str], Doc] = {}
    for doc in docs:
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            schema = version.get("schema", {}).get("openAPIV3Schema")
            if schema:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                found[key] = as_json_schema(schema)
    return found


def as_json_schema(node: Any) -> Any:
    """An openAPIV3Schema as draft-4 JSON Schema: `nullable` becomes a null type, and the
    `x-kubernetes-*` extensions (CEL rules, list types), which jsonschema cannot run, go."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@dataclass
class Report:
    checked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: (apiVersion, kind) of documents no schema was available for.
    unknown: list[tuple[str, str]] = field(default_factory=list)


def name_of(doc: Doc) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def _schema_errors(schema: Doc, doc: Doc) -> Iterator[str]:
    for error in jsonschema.Draft4Validator(schema).iter_errors(doc):
        where = ".".join(str(p) for p in error.path) or "<root>"
        yield f"{name_of(doc)}: {where}: {error.message}"


def validate(docs: list[Doc], kube_version: str, strict: bool = True) -> Report:
    """Validate each document; CRDs among `docs` supply the schemas of their custom resources."""
    report = Report()
    custom = crd_schemas(docs)
    for doc in docs:
        key = (str(doc.get("apiVersion")), str(doc.get("kind")))
        if key in custom:
            report.errors.extend(_schema_errors(custom[key], doc))
        else:
            try:
                kubernetes_validate.validate(doc, kube_version, strict)
            except kubernetes_validate.SchemaNotFoundError:
                report.unknown.append(key)
                continue
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path) or "<root>"
                report.errors.append(f"{name_of(doc)}: {where}: {exc.message}")
            if doc.get("kind") == "CustomResourceDefinition":
                report.errors.extend(_crd_schema_errors(doc))
        report.checked.append(name_of(doc))
    return report


def _crd_schema_errors(crd: Doc) -> Iterator[str]:
    """Each version's openAPIV3Schema must itself be a valid schema."""
    for version in crd["spec"]["versions"]:
        schema = as_json_schema(version.get("schema", {}).get("openAPIV3Schema", {}))
        try:
            jsonschema.Draft4Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            yield f"{name_of(crd)} {version['name']}: invalid openAPIV3Schema: {exc.message}"
