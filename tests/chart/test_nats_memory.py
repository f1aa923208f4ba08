"""nats-server's GOMEMLIMIT follows its container's memory limit: without it the Go heap may grow
to twice its live data before a collection (soak S6 saw nats-server +80% from that alone), and a
pod near its limit is OOM-killed while its live data fits."""

from __future__ import annotations

import subprocess

import pytest

from ojs_nats.embedded import find_binary
from tests.chart import helm

NATS = f"{helm.RELEASE}-nats"


def nats_env(*sets: str) -> dict[str, str]:
    docs = helm.render(sets=sets, crds=False)
    return helm.env_of(helm.container(helm.one(docs, "StatefulSet", NATS), "nats"))


@pytest.mark.parametrize(("limit", "expected"), [
    ("1Gi", 966_367_641),  # the chart's default limit
    ("512M", 460_800_000),
    ("3Gi", 2_899_102_924),
    ("2000000000", 1_800_000_000),
    ("007Gi", 6_764_573_491),  # leading zeros: the unit is read from the end
])
def test_gomemlimit_is_nine_tenths_of_the_memory_limit(limit: str, expected: int) -> None:
    env = nats_env(f"nats.container.resources.limits.memory={limit}")
    assert int(env["GOMEMLIMIT"]) == expected


def test_the_default_install_sets_it_and_nats_server_accepts_it() -> None:
    value = nats_env()["GOMEMLIMIT"]
    # The Go runtime refuses to start on a GOMEMLIMIT it cannot parse.
    done = subprocess.run([str(find_binary()), "--version"], capture_output=True, text=True,
                          env={"GOMEMLIMIT": value}, timeout=30)
    assert done.returncode == 0, done.stderr


def test_an_explicit_gomemlimit_wins_and_no_limit_sets_none() -> None:
    env = nats_env("nats.container.resources.limits.memory=1.5Gi",
                   "nats.container.env.GOMEMLIMIT=700MiB")
    assert env["GOMEMLIMIT"] == "700MiB"
    assert "GOMEMLIMIT" not in nats_env("nats.container.resources.limits.memory=null")


def test_a_limit_it_cannot_derive_from_fails_the_render_with_the_way_out() -> None:
    error = helm.render_error(sets=["nats.container.resources.limits.memory=1.5Gi"])
    assert "nats.container.env.GOMEMLIMIT" in error
