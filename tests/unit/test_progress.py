"""Progress of an active job (ojs-progress.md) as pure functions of the record."""

import pytest

from ojs_nats.errors import ConflictError, InvalidRequestError
from ojs_nats.model import job as jobs
from ojs_nats.model import progress
from ojs_nats.model.envelope import parse_submission

T0 = 1_770_892_200_000


def active(attempt_delay=10):
    record = jobs.new_record(parse_submission({"type": "a.b", "args": []}, T0), T0).record
    return jobs.claim(record, T0 + attempt_delay, "w1", 30_000, None).record


@pytest.mark.parametrize(("body", "fraction", "data"), [
    ({"progress": 0.47}, 0.47, None),
    ({"progress": 1.3}, 1.0, None),  # clamped, not refused (§5.1)
    ({"progress": -2}, 0.0, None),
    ({"data": {"rows": 3}}, None, {"rows": 3}),
    ({"progress": 1, "data": {}}, 1.0, {}),
])
def test_reports_are_validated_and_clamped(body, fraction, data):
    assert progress.validate(body) == progress.Report(fraction, data)


@pytest.mark.parametrize("body", [{}, {"progress": "half"}, {"progress": True}, {"data": [1]}])
def test_bad_reports_are_refused(body):
    with pytest.raises(InvalidRequestError):
        progress.validate(body)


def test_a_report_is_stored_and_extends_the_lease_like_a_heartbeat():
    record = active()
    change = progress.record(record, T0 + 5000, "w1", progress.Report(0.5, {"rows": 5}), 1_800_000)
    view = progress.view(change.record)
    assert (view["progress"], view["data"], view["state"]) == (0.5, {"rows": 5}, "active")
    assert view["updated_at"].endswith("Z")
    assert change.record["sys"]["lease"]["deadline"] == T0 + 5000 + 30_000
    assert change.step == record["sys"]["step"]  # not a state change
    assert [e.type for e in change.events] == ["progress.updated"]


def test_the_fraction_never_goes_down_within_an_attempt():
    record = progress.record(active(), T0 + 1, "w1", progress.Report(0.8, None), 1).record
    lower = progress.record(record, T0 + 2, "w1", progress.Report(0.3, {"phase": 2}), 1).record
    assert progress.view(lower)["progress"] == 0.8
    assert progress.view(lower)["data"] == {"phase": 2}


def test_no_progress_reads_as_nulls_and_a_retry_starts_afresh():
    record = active()
    assert progress.view(record)["progress"] is None
    reported = progress.record(record, T0 + 1, "w1", progress.Report(0.6, None), 1).record
    failed = jobs.fail(reported, T0 + 2, {"code": "x", "message": "m"}, "w1").record
    assert progress.view(failed)["progress"] == 0.6  # kept on failure (§8.2)
    retried = jobs.on_wake(failed, T0 + 60_000).record
    again = jobs.claim(retried, T0 + 60_001, "w1", 30_000, None).record
    assert progress.view(again)["progress"] is None  # a new attempt (§5.3)


def test_a_completed_job_reads_as_done_if_progress_was_reported():
    reported = progress.record(active(), T0 + 1, "w1", progress.Report(0.4, None), 1).record
    completed = jobs.complete(reported, T0 + 2, None, "w1").record
    assert progress.view(completed)["progress"] == 1.0
    untracked = jobs.complete(active(), T0 + 2, None, "w1").record
    assert progress.view(untracked)["progress"] is None


def test_reports_on_jobs_that_are_not_active_are_conflicts():
    completed = jobs.complete(active(), T0 + 2, None, "w1").record
    with pytest.raises(ConflictError):
        progress.record(completed, T0 + 3, "w1", progress.Report(0.5, None), 1)
