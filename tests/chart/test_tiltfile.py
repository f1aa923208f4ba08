"""The Tiltfile, checked offline against the chart it deploys (tests/chart/tiltcheck.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart import helm, tiltcheck
from tests.support import ROOT

TILTFILE = ROOT / "Tiltfile"


@pytest.mark.parametrize("args", [{}, {"no-operator": True}], ids=["all", "no-operator"])
def test_tiltfile_passes_the_offline_check(args: dict[str, bool]) -> None:
    result = tiltcheck.check(TILTFILE, str(helm.TOOLS / "helm"), args)
    assert result.errors == []
    assert result.lints == []
    resources = {a["workload"] for a in result.named("k8s_resource")}
    expected = {f"{helm.RELEASE}-gateway", f"{helm.RELEASE}-nats"}
    if not args:
        expected.add(f"{helm.RELEASE}-operator")
    assert resources == expected
    # The chart it deploys is the dev variant, and it is valid Kubernetes.
    (chart,) = result.named("helm")
    assert chart["values"] == ["deploy/values-dev.yaml"]
    assert any(call.endswith(":docker_build_with_restart") for call, _ in result.calls)
    assert {d["kind"] for d in result.docs} >= {"Deployment", "StatefulSet", "Service"}


def test_the_check_catches_a_broken_tiltfile(tmp_path: Path) -> None:
    for src in (ROOT / "charts", ROOT / "deploy"):
        (tmp_path / src.name).symlink_to(src)
    broken = TILTFILE.read_text().replace("port_forwards=['8080:8080']",
                                          "port_forwards=['8080:9999'], colour='red'")
    (tmp_path / "Tiltfile").write_text(broken)
    result = tiltcheck.check(tmp_path / "Tiltfile", str(helm.TOOLS / "helm"))
    assert result.errors
    assert "colour" in result.errors[0]
    renamed = TILTFILE.read_text().replace("RELEASE + '-gateway', port", "'gw', port")
    (tmp_path / "Tiltfile").write_text(renamed)
    result = tiltcheck.check(tmp_path / "Tiltfile", str(helm.TOOLS / "helm"))
    assert any("k8s_resource('gw')" in e for e in result.errors)
