"""The ACK batcher's logic: batching, per-item replies, and falling back to single ACKs."""

import asyncio

from ojs_nats.worker.acks import AckBatcher
from ojs_nats.worker.transport import Reply


class RecordingTransport:
    """Answers like a gateway would; records what was sent (no network: pure logic test)."""

    def __init__(self, batch_status=200):
        self.batch_status = batch_status
        self.batches = []
        self.singles = []

    async def ack_batch(self, worker_id, acks, deadline):
        await asyncio.sleep(0.01)
        body = {"acks": acks}
        self.batches.append([a["job_id"] for a in body["acks"]])
        if self.batch_status != 200:
            return Reply(self.batch_status, {"error": {"code": "not_found"}}, 1)
        results = [{"job_id": a["job_id"], "acknowledged": a["job_id"] != "bad",
                    **({} if a["job_id"] != "bad" else
                       {"error": {"code": "conflict", "details": {"current_state": "completed"}}})}
                   for a in body["acks"]]
        return Reply(200, {"results": results}, 1)

    async def ack(self, job_id, worker_id, result, deadline):
        self.singles.append(job_id)
        return Reply(200, {"state": "completed"}, 1)


async def test_acks_made_while_one_is_in_flight_share_the_next_request():
    transport = RecordingTransport()
    batcher = AckBatcher(transport, "w")
    first = asyncio.ensure_future(batcher.ack("a", None, 1e12))
    await asyncio.sleep(0.002)  # "a" is on the wire now
    rest = await asyncio.gather(*(batcher.ack(j, None, 1e12) for j in ["b", "bad", "c"]))
    replies = [await first, *rest]
    assert [r.status for r in replies] == [200, 200, 409, 200]
    assert replies[2].current_state == "completed"
    assert transport.batches == [["a"], ["b", "bad", "c"]]  # first alone, the rest together


async def test_a_server_without_the_extension_gets_single_acks_from_then_on():
    transport = RecordingTransport(batch_status=404)
    batcher = AckBatcher(transport, "w")
    replies = await asyncio.gather(batcher.ack("a", None, 1e12), batcher.ack("b", None, 1e12))
    assert [r.status for r in replies] == [200, 200]
    assert batcher.batching is False
    await batcher.ack("c", None, 1e12)
    assert transport.singles == ["a", "b", "c"]
    assert len(transport.batches) == 1
