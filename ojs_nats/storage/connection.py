"""The one NATS connection of a process, and the raw JetStream calls the stores are built on.

Storage talks to JetStream through its wire API (publish with expectation headers, direct get,
`$JS.API.*` requests) rather than nats-py's higher-level wrappers: it keeps every round trip
visible and cheap. This module is the edge where `nats` exceptions become ours: timeouts, lost
connections and missing responders become `StorageUnavailableError` (503, retryable); a failed
compare-and-set becomes `RevisionConflict`, which the service layer resolves.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import nats
import nats.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ojs_nats.errors import StorageUnavailableError
from ojs_nats.storage import names

#: Message headers: a mapping, or a header block already encoded (`NATS/1.0\r\n...\r\n\r\n`,
#: see `header_block`) for writers that frame many messages alike.
Headers = Mapping[str, str] | bytes | None

log = logging.getLogger(__name__)

#: JetStream's "no message found" (a subject with no stored message).
ERR_NO_MESSAGE = 10037
#: How long one JetStream request may take before the operation fails with 503.
REQUEST_TIMEOUT_S = 5.0


class JetStreamError(Exception):
    """JetStream refused a request (the API answered with an error object)."""

    def __init__(self, status: int, err_code: int, description: str) -> None:
        super().__init__(f"{description} (status {status}, err_code {err_code})")
        self.status = status
        self.err_code = err_code
        self.description = description


class RevisionConflict(Exception):
    """A compare-and-set lost: the entry changed since it was read."""


_UNAVAILABLE = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    asyncio.TimeoutError,
)


class Connection:
    """A connected NATS client plus JetStream request helpers.

    Requests are multiplexed over one reply subscription, like nats-py's own, but with a
    counter for reply tokens and one sweeper task for timeouts instead of a random token and
    a timer per request: both showed up as a sizeable share of the gateway's CPU under load.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._reply_prefix = client.new_inbox() + "."
        self._tokens = itertools.count(1)
        self._waiting: dict[str, tuple[asyncio.Future[Msg], float]] = {}
        self._reply_sub: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None
        #: Read single records from the stream leader (set for replicated deployments).
        self.leader_reads = False

    async def _start(self) -> None:
        self._reply_sub = await self.client.subscribe(self._reply_prefix + "*", cb=self._on_reply)
        self._sweeper = asyncio.create_task(self._sweep(), name="nats-request-timeouts")

    async def _on_reply(self, msg: Msg) -> None:
        waiting = self._waiting.pop(msg.subject[len(self._reply_prefix) :], None)
        if waiting is None or waiting[0].done():
            return  # the request timed out already
        if msg.headers and msg.headers.get("Status") == "503":
            waiting[0].set_exception(
                StorageUnavailableError("NATS JetStream did not answer (no responders).")
            )
        else:
            waiting[0].set_result(msg)

    async def _sweep(self) -> None:
        """Fail requests that got no answer in time (checked a few times a second)."""
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            expired = [t for t, (_, deadline) in self._waiting.items() if deadline < now]
            for token in expired:
                future, _ = self._waiting.pop(token)
                if not future.done():
                    future.set_exception(
                        StorageUnavailableError("NATS JetStream did not answer (timeout).")
                    )

    @classmethod
    async def open(
        cls,
        urls: tuple[str, ...],
        name: str = "ojs-nats",
        on_event: Callable[[str], Awaitable[None]] | None = None,
    ) -> Connection:
        """Connect, retrying until a server answers; reconnect forever afterwards."""

        async def note(kind: str) -> None:
            log.warning("nats connection %s", kind)
            if on_event is not None:
                await on_event(kind)

        async def disconnected() -> None:
            await note("lost")

        async def reconnected() -> None:
            await note("restored")

        async def error(exc: Exception) -> None:
            log.warning("nats error: %s", exc)

        client = await nats.connect(
            servers=list(urls),
            name=name,
            connect_timeout=2,
            reconnect_time_wait=0.5,
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            ping_interval=10,
            max_outstanding_pings=3,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
            pending_size=64 * 1024 * 1024,
        )
        connection = cls(client)
        await connection._start()
        return connection

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected)

    async def close(self, drain: bool = True) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.client.is_closed:
            return
        try:
            if drain:
                await self.client.drain()
            else:
                await self.client.close()
        except Exception:  # closing must never raise
            log.debug("error while closing NATS", exc_info=True)

    # ------------------------------------------------------------ raw requests
    async def request(self, subject: str, payload: bytes = b"", headers: Headers = None) -> Msg:
        """Send and wait for the answer (StorageUnavailableError after REQUEST_TIMEOUT_S)."""
        return await (await self._send(subject, payload, headers))

    async def request_many(self, messages: Sequence[tuple[str, bytes, Headers]]) -> list[Msg]:
        """Send several requests back to back and wait for all the answers together."""
        return list(await asyncio.gather(*await self._send_many(messages)))

    async def _send(self, subject: str, payload: bytes, headers: Headers) -> asyncio.Future[Msg]:
        return (await self._send_many([(subject, payload, headers)]))[0]

    async def _send_many(
        self, messages: Sequence[tuple[str, bytes, Headers]]
    ) -> list[asyncio.Future[Msg]]:
        """Send requests in one write; one future per answer."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        tokens = [format(next(self._tokens), "x") for _ in messages]
        futures: list[asyncio.Future[Msg]] = []
        for token in tokens:
            future: asyncio.Future[Msg] = loop.create_future()
            self._waiting[token] = (future, deadline)
            futures.append(future)
        try:
            await self._write(messages, [self._reply_prefix + token for token in tokens])
        except _UNAVAILABLE as exc:
            for token in tokens:
                self._waiting.pop(token, None)
            raise StorageUnavailableError(
                f"NATS JetStream did not answer ({type(exc).__name__})."
            ) from exc
        return futures

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        headers: Headers = None,
        reply: str = "",
    ) -> None:
        """Fire-and-forget core publish (acks to JetStream, control broadcasts)."""
        await self.publish_many([(subject, payload, headers)], reply)

    async def publish_many(
        self, messages: Sequence[tuple[str, bytes, Headers]], reply: str = ""
    ) -> None:
        """Fire-and-forget publish of several messages, handed to the socket together."""
        try:
            await self._write(messages, [reply] * len(messages))
        except _UNAVAILABLE as exc:
            raise StorageUnavailableError("NATS connection unavailable.") from exc

    async def _write(
        self,
        messages: Sequence[tuple[str, bytes, Headers]],
        replies: Sequence[str],
    ) -> None:
        """Queue protocol commands for `messages` on the client's outgoing buffer.

        nats-py's `publish` validates and encodes each message in Python (a fifth of the
        gateway's CPU in a batch enqueue); our subjects and header values are built by
        `names` and never carry spaces or line breaks, so the commands are written here in
        one piece. Whatever the client does not expect to send at once (closed, draining,
        reconnecting) goes through its own `publish`, which raises or buffers as it should.
        """
        client = self.client
        if not client.is_connected or client.is_draining_pubs:
            for (subject, payload, headers), reply in zip(messages, replies, strict=True):
                await client.publish(subject, payload, reply=reply, headers=_as_dict(headers))
            return
        limit = client.max_payload
        commands = []
        size = 0
        for (subject, payload, headers), reply in zip(messages, replies, strict=True):
            if len(payload) > limit:
                raise nats.errors.MaxPayloadError
            commands.append(_command(subject, reply, payload, headers))
            size += len(payload)
        await client._send_command(b"".join(commands))
        client.stats["out_msgs"] += len(messages)
        client.stats["out_bytes"] += size
        flush = client._flush_queue
        if flush is not None and flush.empty():
            await client._flush_pending()

    async def api(self, subject: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A `$JS.API.*` request; raises `JetStreamError` if JetStream refuses it."""
        msg = await self.request(subject, orjson.dumps(body) if body is not None else b"")
        return _checked(orjson.loads(msg.data) if msg.data else {})

    async def store(self, subject: str, payload: bytes, headers: Headers = None) -> int:
        """Publish into a stream and wait for its ack; returns the stream sequence.

        Raises:
            RevisionConflict: an expected-last-sequence header did not hold.
            JetStreamError: any other refusal.
        """
        return stored_seq(await self.request(subject, payload, headers))

    async def store_many(self, messages: Sequence[tuple[str, bytes, Headers]]) -> list[int]:
        """`store` for several messages at once (pipelined, acks awaited together)."""
        return [stored_seq(msg) for msg in await self.request_many(messages)]

    async def direct_get(self, stream: str, subject: str) -> Msg | None:
        """The last message on `subject`, or None when there is none.

        With replicated streams (`leader_reads`), the stream leader answers: a direct get may be
        served by a follower that has not applied the newest write yet, and a read that misses
        our own last write would, e.g., refuse the ACK of a job just fetched as not active.
        """
        if self.leader_reads:
            return await self._leader_get(stream, subject)
        msg = await self.request(f"$JS.API.DIRECT.GET.{stream}.{subject}")
        if msg.headers and msg.headers.get("Status"):
            if msg.headers["Status"] == "404":
                return None
            raise JetStreamError(
                int(msg.headers["Status"]),
                0,
                str(msg.headers.get("Description", "direct get failed")),
            )
        return msg

    async def _leader_get(self, stream: str, subject: str) -> Msg | None:
        body = orjson.dumps({"last_by_subj": subject})
        answer = orjson.loads((await self.request(f"$JS.API.STREAM.MSG.GET.{stream}", body)).data)
        error = answer.get("error")
        if error:
            if error.get("err_code") == ERR_NO_MESSAGE:
                return None
            _checked(answer)
        return _as_msg(self.client, answer["message"])


def _command(subject: str, reply: str, payload: bytes, headers: Headers) -> bytes:
    """A PUB/HPUB protocol command (https://docs.nats.io/reference/reference-protocols/nats-protocol)."""
    target = f"{subject} {reply}" if reply else subject
    if not headers:
        return b"PUB %s %d\r\n%s\r\n" % (target.encode(), len(payload), payload)
    head = headers if isinstance(headers, bytes) else header_block(headers)
    return b"HPUB %s %d %d\r\n%s%s\r\n" % (
        target.encode(),
        len(head),
        len(head) + len(payload),
        head,
        payload,
    )


def header_block(headers: Mapping[str, str], extra: str = "") -> bytes:
    """Headers as the protocol writes them; `extra`: lines already formatted (`Key: value\r\n`)
    to append. Keys and values come from `names`: no spaces or line breaks to escape."""
    lines = "".join([f"{key}: {value}\r\n" for key, value in headers.items()])
    return f"NATS/1.0\r\n{lines}{extra}\r\n".encode()


def _as_dict(headers: Headers) -> dict[str, str] | None:
    if not headers:
        return None
    if not isinstance(headers, bytes):
        return dict(headers)
    lines = headers.decode().split("\r\n")[1:]
    return dict(line.split(": ", 1) for line in lines if line)


def _parse_headers(raw: str | None) -> dict[str, str]:
    """A base64 NATS header block (`NATS/1.0\r\nKey: Value\r\n...`) as a dict."""
    if not raw:
        return {}
    lines = base64.b64decode(raw).decode(errors="replace").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def stored_seq(msg: Msg) -> int:
    """The stream sequence from a publish ack (raising what the ack reports)."""
    ack = orjson.loads(msg.data) if msg.data else {}
    if "error" in ack:
        err = ack["error"]
        if err.get("err_code") in names.ERR_WRONG_LAST_SEQUENCE:
            raise RevisionConflict(err.get("description", "wrong last sequence"))
    return int(_checked(ack)["seq"])


def _as_msg(client: Client, stored: dict[str, Any]) -> Msg:
    """A `STREAM.MSG.GET` answer shaped like a direct get's reply (headers included)."""
    headers = _parse_headers(stored.get("hdrs"))
    headers["Nats-Sequence"] = str(stored.get("seq", 0))
    headers["Nats-Subject"] = str(stored.get("subject", ""))
    data = base64.b64decode(stored["data"]) if stored.get("data") else b""
    return Msg(_client=client, subject=str(stored.get("subject", "")), data=data, headers=headers)


def _checked(response: dict[str, Any]) -> dict[str, Any]:
    err = response.get("error")
    if err:
        raise JetStreamError(
            int(err.get("code", 500)),
            int(err.get("err_code", 0)),
            str(err.get("description", "JetStream error")),
        )
    return response


def status_of(msg: Msg) -> str | None:
    """The status code of a JetStream control message (404 no messages, 408, 409...), if any."""
    if msg.headers:
        status = msg.headers.get("Status")
        return str(status) if status else None
    return None


def ack_metadata(reply: str) -> tuple[int, int]:
    """(stream sequence, store time in ns) from a JetStream ack subject (v1 or v2 form)."""
    tokens = reply.split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5]), int(tokens[7])
    # $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>...
    return int(tokens[7]), int(tokens[9])
