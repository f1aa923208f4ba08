"""deploy/Dockerfile, checked without a Docker engine: its structure (multi-stage, slim base,
non-root numeric user, the `ojs-nats` entrypoint) and what its build stage installs (the
project wheel with both packages and the console script the chart runs)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.chart import helm, local
from tests.support import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, flags=re.I)
        if match:
            current = match[2]
            found[current] = [line]
        elif current:
            found[current].append(line)
    return found


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    found = stages()
    assert list(found) == ["build", "base", "dev", "runtime"]
    # The default target (the last stage) is the runtime image.
    runtime = found["runtime"]
    assert runtime[0].startswith("FROM base ")
    assert all(s[0].split()[1].endswith("-slim") or s[0].split()[1] in found
               for s in found.values())
    users = [line.split()[1] for line in runtime + found["base"] if line.startswith("USER ")]
    assert users == ["10001:10001"]
    # The compilers and pip caches of the build stage stay there: only the venv is copied.
    assert [line for line in found["base"] if line.startswith("COPY")] == [
        "COPY --from=build /opt/venv /opt/venv"]
    assert local.entrypoint() == ["ojs-nats"]
    deployment = helm.one(helm.render(), "Deployment", f"{helm.RELEASE}-gateway")
    # The chart's pod user is the image's user.
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def test_dockerignore_sends_only_the_sources() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"
    assert {"!ojs_nats/", "!operator/ojs_operator/", "!pyproject.toml"} <= set(lines)


def test_build_stage_wheel_has_both_packages_and_the_entrypoint(tmp_path: Path) -> None:
    # What `pip install .` in the build stage installs, built the same way.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("ojs_nats-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ojs_nats/cli.py" in names
    assert "ojs_operator/crds.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert re.search(r"^ojs-nats = ojs_nats.cli:main$", scripts, flags=re.M)
    # the chart's operator Deployment runs this console script
    assert re.search(r"^ojs-nats-operator = ojs_operator.cli:main$", scripts, flags=re.M)
    extras = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert b"Provides-Extra: operator" in extras
