"""The gateway's default process count: CPUs the process may use, capped by a CPU quota."""

import os

import pytest

from ojs_nats import cpus


def v2(tmp_path, text):
    (tmp_path / "cpu.max").write_text(text)
    return tmp_path


def v1(tmp_path, quota, period):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota)
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(period)
    return tmp_path


@pytest.mark.parametrize(("text", "quota"), [
    ("100000 100000\n", 1.0),
    ("150000 100000\n", 1.5),
    ("50000 100000\n", 0.5),
    ("max 100000\n", None),
    ("garbage\n", None),
])
def test_cgroup_v2_quota(tmp_path, text, quota):
    assert cpus.cpu_quota(v2(tmp_path, text)) == quota


@pytest.mark.parametrize(("quota_us", "period_us", "quota"), [
    ("200000\n", "100000\n", 2.0),
    ("-1\n", "100000\n", None),
])
def test_cgroup_v1_quota(tmp_path, quota_us, period_us, quota):
    assert cpus.cpu_quota(v1(tmp_path, quota_us, period_us)) == quota


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cpus.cpu_quota(tmp_path) is None


def test_a_quota_caps_the_count_rounding_up_and_never_below_one(tmp_path):
    mine = len(os.sched_getaffinity(0))
    assert cpus.usable_cpus(tmp_path) == mine
    assert cpus.usable_cpus(v2(tmp_path, "50000 100000")) == 1
    assert cpus.usable_cpus(v2(tmp_path, "150000 100000")) == min(mine, 2)
    assert cpus.usable_cpus(v2(tmp_path, f"{100000 * (mine + 8)} 100000")) == mine
