"""Event polling (ojs-events.md §6.4): filters (`types`, `queues`, `job_types`, AND-combined)
and resumption with `after` = a page's cursor or an event id."""

import httpx
import pytest

from ojs_nats.api.app import create_app
from ojs_nats.config import Settings
from ojs_nats.model import ids
from ojs_nats.storage import events as event_log
from tests.integration.test_bad_input import assert_ojs_error
from tests.support import namespace


async def push(client, queue, job_type="a.b"):
    body = {"type": job_type, "args": [], "options": {"queue": queue}}
    response = await client.post("/ojs/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["job"]


async def events(client, query):
    response = await client.get(f"/ojs/v1/events?{query}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_job_types_filter_combines_with_the_other_filters(client):
    await push(client, "jt-q", "email.send")
    await push(client, "jt-q", "report.build")
    await push(client, "jt-other", "email.send")
    await client.post("/ojs/v1/queues/jt-q/pause")  # a queue event: it has no job type
    got = (await events(client, "job_types=email.send"))["events"]
    assert [(e["data"]["queue"], e["data"]["job_type"]) for e in got] == [
        ("jt-q", "email.send"), ("jt-other", "email.send")]
    got = (await events(client, "job_types=email.send,report.build&queues=jt-q"))["events"]
    assert [e["data"]["job_type"] for e in got] == ["email.send", "report.build"]
    got = (await events(client, "job_types=report.build&types=job.*&queues=jt-q"))["events"]
    assert [e["type"] for e in got] == ["job.enqueued"]
    assert (await events(client, "job_types=report.build&types=job.started"))["events"] == []


async def test_after_an_event_id_returns_the_events_stored_after_it(client):
    for n in range(4):
        await push(client, "after-q", f"t.n{n}")
    everything = (await events(client, "queues=after-q"))["events"]
    assert len(everything) == 4
    second = everything[1]["id"]
    rest = await events(client, f"after={second}")
    assert [e["id"] for e in rest["events"]] == [e["id"] for e in everything[2:]]
    # Filters apply to what follows the event, whatever the event itself was.
    only = await events(client, f"after={second}&job_types=t.n3")
    assert [e["data"]["job_type"] for e in only["events"]] == ["t.n3"]
    # The last event: nothing after it, and the cursor keeps the place for the next poll.
    last = await events(client, f"after={everything[-1]['id']}")
    assert last["events"] == []
    assert last["has_more"] is False
    await push(client, "after-q", "t.n4")
    later = await events(client, f"after={last['cursor']}")
    assert [e["data"]["job_type"] for e in later["events"]] == ["t.n4"]


async def test_after_an_event_id_pages_with_limit(client):
    for n in range(5):
        await push(client, "page-q", f"t.n{n}")
    first = (await events(client, "queues=page-q&limit=1"))["events"]
    seen = [first[0]["data"]["job_type"]]
    after = first[0]["id"]
    while True:
        page = await events(client, f"queues=page-q&limit=2&after={after}")
        seen += [e["data"]["job_type"] for e in page["events"]]
        if not page["has_more"]:
            break
        after = page["events"][-1]["id"]  # resume by event id, as a consumer would
    assert seen == [f"t.n{n}" for n in range(5)]


async def test_after_an_unknown_event_id_resumes_from_its_time(client):
    await push(client, "time-q")
    now = ids.now_ms()
    past = "evt_" + ids.uuid7(now - 3_600_000)
    assert len((await events(client, f"after={past}"))["events"]) == 1
    future = "evt_" + ids.derived_uuid7(now + 3_600_000, "nobody")
    page = await events(client, f"after={future}")
    assert page["events"] == []
    assert page["has_more"] is False


async def test_an_event_id_from_a_clock_running_ahead_skips_nothing(client):
    # An id stamped 30 s after the events were stored (a gateway clock 30 s fast) is not found
    # near its time: resuming must replay from well before it, not skip what came in between.
    await push(client, "skew-q")
    ahead = "evt_" + ids.derived_uuid7(ids.now_ms() + 30_000, "elsewhere")
    got = (await events(client, f"after={ahead}&queues=skew-q"))["events"]
    assert [e["type"] for e in got] == ["job.enqueued"]


async def test_pages_and_event_ids_resume_inside_a_batchs_events(client):
    # A batch's events are stored several per message: a page may end inside one, and both its
    # cursor and an event id from the middle of it resume exactly there.
    jobs = [{"type": f"t.n{n}", "args": [], "options": {"queue": "pack-q"}} for n in range(5)]
    response = await client.post("/ojs/v1/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 201, response.text
    everything = (await events(client, "queues=pack-q"))["events"]
    assert [e["data"]["job_type"] for e in everything] == [f"t.n{n}" for n in range(5)]
    pages, cursors = [], ["0"]
    while True:
        page = await events(client, f"queues=pack-q&limit=2&cursor={cursors[-1]}")
        pages.append([e["id"] for e in page["events"]])
        cursors.append(page["cursor"])
        if not page["has_more"]:
            break
    assert pages == [[e["id"] for e in everything[i : i + 2]] for i in (0, 2, 4)]
    # The first two pages ended inside the batch's message, the last one at its end.
    assert ["." in c for c in cursors[1:]] == [True, True, False]
    middle = await events(client, f"after={everything[2]['id']}&queues=pack-q")
    assert [e["id"] for e in middle["events"]] == [e["id"] for e in everything[3:]]
    last = await events(client, f"after={everything[-1]['id']}&queues=pack-q")
    assert last["events"] == []
    await push(client, "pack-q", "t.n5")
    later = await events(client, f"after={last['cursor']}&queues=pack-q")
    assert [e["data"]["job_type"] for e in later["events"]] == ["t.n5"]


async def test_a_filtered_scan_pages_through_packed_events_without_skipping(client, monkeypatch):
    # Each request examines a bounded number of events (MAX_SCANNED, lowered here), stopping
    # between stored messages; following the cursors finds every match exactly once.
    monkeypatch.setattr(event_log, "MAX_SCANNED", 150)
    wanted = {0, 150, 437, 999}
    queue = {"queue": "scan-q"}
    jobs = [
        {"type": "scan.hit" if n in wanted else "scan.miss", "args": [], "options": queue}
        for n in range(1000)
    ]
    response = await client.post("/ojs/v1/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 201, response.text
    found, cursor, pages = [], "0", 0
    while True:
        page = await events(client, f"queues=scan-q&job_types=scan.hit&cursor={cursor}")
        pages += 1
        found += [e["subject"] for e in page["events"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    ids = [job["id"] for job in response.json()["jobs"]]
    assert found == [ids[n] for n in sorted(wanted)]
    assert pages >= 1000 // 200  # the bound held: no single request read everything


@pytest.mark.parametrize(("query", "field"), [
    ("after=evt_not-a-uuid", "after"),
    ("after=abc", "after"),
    ("after=-1", "after"),
    ("after=7.0", "after"),  # a position inside a message counts at least one event
    ("cursor=0.1", "cursor"),
    ("cursor=1.2.3", "cursor"),
    ("cursor=evt_019539a4-b68c-4def-8000-aabbccddeeff", "cursor"),  # UUIDv4, not v7
    ("limit=many", "limit"),
    ("limit=0", "limit"),
])
async def test_bad_event_query_parameters_are_400_invalid_request(client, query, field):
    error = assert_ojs_error(await client.get(f"/ojs/v1/events?{query}"), 400, "invalid_request")
    assert field in error["message"]


async def test_a_gateway_keeping_events_less_than_the_duplicate_window_starts(nats_server):
    """JetStream refuses a duplicate window longer than the messages live: events kept 30 s
    (under the 120 s window the other streams use) must not stop the gateway at start."""
    settings = Settings(nats_urls=(nats_server.url,), namespace=namespace(), events_max_age_s=30)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        storage = app.state.ctx.storage
        info = await storage.conn.api(f"$JS.API.STREAM.INFO.{storage.names.events_stream}", {})
        assert info["config"]["max_age"] == 30 * 1_000_000_000
        assert info["config"]["duplicate_window"] == 30 * 1_000_000_000
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            await push(http, "short-events")
            got = (await events(http, "queues=short-events"))["events"]
            assert [e["type"] for e in got] == ["job.enqueued"]
