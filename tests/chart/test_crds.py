"""The Queue and CronJob CRDs: one source (operator/ojs_operator/crds.py), committed output.

Checks that the chart's crds/ are exactly what the module generates, that the schemas follow
the API server's structural-schema rules (which offline validators do not check), and that the
example resources pass while wrong ones are refused.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from ojs_operator import crds

from tests.chart import helm, manifests

CRD_DIR = helm.CHART / "crds"


def test_committed_crds_are_the_generated_ones() -> None:
    committed = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    generated = {crds.file_name(c): crds.render(c) for c in crds.all_crds()}
    assert committed.keys() == generated.keys(), "run `make crds`"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run `make crds`"


def _structural_errors(node: dict[str, Any], path: str) -> Iterator[str]:
    """The API server's structural-schema rules that matter here: every node has a type
    (unless it preserves unknown fields), objects declare properties or preserve unknowns,
    and every default validates against its own node."""
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "type" not in node and not preserve:
        yield f"{path}: no type"
    if node.get("type") == "object" and "properties" not in node and not preserve \
            and path.count(".") > 0 and not path.endswith("metadata"):
        yield f"{path}: object without properties"
    if "default" in node:
        try:
            jsonschema.Draft4Validator(manifests.as_json_schema(node)).validate(node["default"])
        except jsonschema.ValidationError as exc:
            yield f"{path}: default {node['default']!r} invalid: {exc.message}"
    for name, child in node.get("properties", {}).items():
        yield from _structural_errors(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _structural_errors(node["items"], f"{path}[]")


@pytest.mark.parametrize("crd", crds.all_crds(), ids=crds.file_name)
def test_schemas_are_structural(crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert list(_structural_errors(schema, crd["spec"]["names"]["kind"])) == []
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"]
    assert crd["spec"]["names"]["shortNames"]


def test_our_cronjob_does_not_shadow_batch_cronjob() -> None:
    names = crds.cron_crd()["spec"]["names"]
    assert names["kind"] == "CronJob"
    taken = {"cronjobs", "cronjob", "cj"}  # batch/v1's plural, singular and short name
    assert not taken & {names["plural"], names["singular"], *names["shortNames"]}


def _example(kind: str) -> dict[str, Any]:
    docs = [d for p in helm.EXAMPLES for d in manifests.load_all(p.read_text())]
    return next(d for d in docs if d["kind"] == kind)


def _errors(doc: dict[str, Any]) -> list[str]:
    report = manifests.validate([*crds.all_crds(), doc], "1.37")
    assert report.unknown == []
    return report.errors


def test_examples_validate() -> None:
    assert _errors(_example("Queue")) == []
    assert _errors(_example("CronJob")) == []


@pytest.mark.parametrize(("kind", "path", "value"), [
    ("Queue", ["spec", "paused"], "yes"),
    ("Queue", ["spec", "queueName"], "Not A Queue"),
    ("Queue", ["spec", "autoscaling", "minReplicas"], -1),
    ("Queue", ["spec", "autoscaling", "targetWaitingJobsPerReplica"], 0),
    ("Queue", ["spec", "backpressure", "strategy"], "drop_newest"),
    ("Queue", ["spec", "retry", "backoffCoefficient"], 0.5),
    ("Queue", ["spec", "deadLetter", "retention"], "7 days"),
    ("Queue", ["spec", "rateLimit", "window", "limit"], "ten"),
    ("Queue", ["spec", "rateLimit", "throttle"], {"limit": 0, "period": "PT1S"}),
    ("Queue", ["spec", "retention"], {"completed": "1 day"}),
    ("Queue", ["spec", "visibilityTimeoutSeconds"], 0),
    ("Queue", ["spec", "autoscaling", "mode"], "hpa"),
    ("Queue", ["spec", "autoscaling", "priorities"], [101]),
    ("Queue", ["spec", "autoscaling", "targetRef"], {"kind": "Deployment"}),
    ("CronJob", ["spec", "overlapPolicy"], "sometimes"),
    ("CronJob", ["spec", "cronName"], "Daily_Digest"),
    ("CronJob", ["spec", "jobTemplate", "type"], "Email.Send"),
    ("CronJob", ["spec", "jobTemplate", "options", "priority"], 101),
    ("CronJob", ["spec", "jobTemplate", "args"], "not-a-list"),
    ("CronJob", ["spec", "schedule"], None),
])
def test_invalid_resources_are_refused(kind: str, path: list[str], value: Any) -> None:
    doc = copy.deepcopy(_example(kind))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    assert _errors(doc), f"{kind} with {'.'.join(path)}={value!r} was accepted"
