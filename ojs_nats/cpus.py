"""How many CPUs this process may really use: its CPU affinity, capped by a container's CPU
quota (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`).

`os.cpu_count()` counts the host's CPUs: a gateway limited to one CPU on a 16-core node would
start 16 processes that the quota then throttles.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    quota = cpu_quota(cgroup_root)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cpu_quota(cgroup_root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota in CPUs (e.g. 1.5), or None when there is none or it cannot be read."""
    try:
        fields = (cgroup_root / "cpu.max").read_text().split()
    except OSError:
        fields = []
    if fields:  # cgroup v2: "<quota> <period>" or "max <period>"
        return _ratio(fields[0], fields[1] if len(fields) > 1 else "")
    try:
        quota = (cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text()
        period = (cgroup_root / "cpu" / "cpu.cfs_period_us").read_text()
    except OSError:
        return None
    return _ratio(quota, period)  # cgroup v1: quota -1 means none


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None  # "max", or something unreadable
    return q / p if q > 0 and p > 0 else None
