"""Compare two versions of the code with one benchmark, in interleaved runs.

This machine's speed drifts by 30% and more within minutes (a shared VM), so a figure measured
before a change and one measured after it, minutes apart, can disagree more than the change
does. This script checks out REF in a temporary git worktree and runs the same benchmark script
alternately on REF and on the working tree (REF, new, new, REF, REF, new, ...), --rounds times
each, then prints the median of every figure of the scripts' JSON lines side by side, with the
ratio new / REF, and one JSON line.

    .venv/bin/python benchmarks/compare.py --ref HEAD~3 [--rounds 3] -- batch_enqueue.py \
        --concurrency 1 --requests 60 --no-ceiling

Each side runs with PYTHONPATH set to its own checkout, so its gateways and workers import that
side's `ojs_nats`. The peers' reference figures, the raw JetStream ceiling and the load average
are left out of the table, and so is what every run has in common (settings).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = ("ceiling", "peers_reference", "loadavg_1m", "cores", "quick", "rep")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ref", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side (3)")
    parser.add_argument("script", help="a script in benchmarks/, e.g. batch_enqueue.py")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's own options")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ojs-compare-") as tmp:
        old_root = Path(tmp) / "ref"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(old_root), opts.ref],
            cwd=ROOT,
            check=True,
        )
        try:
            figures = _interleaved(opts, {"ref": old_root, "new": ROOT})
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old_root)], cwd=ROOT, check=False
            )
    _report(opts, figures)
    return 0


def _interleaved(
    opts: argparse.Namespace, roots: dict[str, Path]
) -> dict[str, list[dict[str, float]]]:
    figures: dict[str, list[dict[str, float]]] = {side: [] for side in roots}
    for round_ in range(opts.rounds):
        order = ["ref", "new"] if round_ % 2 == 0 else ["new", "ref"]
        for side in order:
            root = roots[side]
            print(f"round {round_ + 1}/{opts.rounds}: {side} ({root})", flush=True)
            done = subprocess.run(
                [sys.executable, str(root / "benchmarks" / opts.script), *opts.args],
                cwd=root,
                env={**os.environ, "PYTHONPATH": str(root)},
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
                raise SystemExit(f"{opts.script} failed on {side} (exit {done.returncode})")
            figures[side].append(_flatten(orjson.loads(lines[-1])))
    return figures


def _flatten(value: Any, path: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON document by dotted path (list items by index or variant)."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return {path: float(value)}
    found: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in SKIPPED:
                found.update(_flatten(item, f"{path}.{key}" if path else key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            label = str(index)
            if isinstance(item, dict):
                label = str(item.get("variant") or item.get("concurrency") or index)
                if item.get("transport"):
                    label += "/" + str(item["transport"])
            found.update(_flatten(item, f"{path}[{label}]"))
    return found


def _report(opts: argparse.Namespace, figures: dict[str, list[dict[str, float]]]) -> None:
    keys = [
        k for k in figures["new"][0] if all(k in run for side in figures.values() for run in side)
    ]
    print(f"\n{opts.script} {' '.join(opts.args)}: medians of {opts.rounds} runs each")
    print(f"  {'figure':<52} {'ref ' + opts.ref:>14} {'new':>12} {'new/ref':>8}")
    table = {}
    for key in keys:
        if len({run[key] for side in figures.values() for run in side}) == 1:
            continue  # a setting, the same in every run
        old = statistics.median(run[key] for run in figures["ref"])
        new = statistics.median(run[key] for run in figures["new"])
        ratio = new / old if old else None
        table[key] = {"ref": old, "new": new, "ratio": ratio}
        shown = f"{ratio:8.2f}" if ratio is not None else f"{'n/a':>8}"
        print(f"  {key:<52} {old:14,.1f} {new:12,.1f} {shown}")
    print(
        orjson.dumps(
            {
                "benchmark": "compare",
                "script": opts.script,
                "args": opts.args,
                "ref": opts.ref,
                "rounds": opts.rounds,
                "medians": table,
            }
        ).decode()
    )


if __name__ == "__main__":
    raise SystemExit(main())
