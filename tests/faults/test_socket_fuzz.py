"""Hostile frame sequences against a real node (``relaygate serve`` in a child process).

Hypothesis generates sequences of frames (valid and broken JSON, wrong arity and types, huge and
deep payloads, binary kinds, interleaved joins/leaves/pushes on many topics, control frames,
fragments, invalid UTF-8, reserved bits and opcodes, unmasked frames, abrupt closes). After
each sequence: every close code the node sent is one of the protocol's, the node answers
``/healthz``, and two well-behaved clients on other sockets still get their replies and
broadcasts in order. After all of them the node's memory has stayed bounded.
"""

from __future__ import annotations

import asyncio
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate.client import Client
from tests.faults import wsraw
from tests.faults.wsraw import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, RawSocket, frame
from tests.web.liveserver import LiveServer, register

# Close codes a Relaygate node may send (frames.py, plus 1002 for WebSocket protocol errors).
PROTOCOL_CLOSE_CODES = {1001, 1002, 1003, 1007, 1008, 1009}
RSS_GROWTH_LIMIT = 64 * 1024 * 1024

TOPICS = [
    "room:lobby",
    "room:fuzz",
    "products",
    "user:1",
    "user:2",
    "bogus:x",
    "",
    "room:" + "x" * 80,
    "phoenix",
]
EVENTS = ["phx_join", "phx_leave", "heartbeat", "message:new", "typing", "presence:update", "nope", ""]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
refs = st.none() | st.integers(0, 50).map(str) | json_values
phoenix_messages = st.builds(
    lambda join_ref, ref, topic, event, payload: orjson.dumps([join_ref, ref, topic, event, payload]),
    refs,
    refs,
    st.sampled_from(TOPICS) | st.text(max_size=12),
    st.sampled_from(EVENTS) | st.text(max_size=12),
    json_values,
)
any_json = json_values.map(orjson.dumps)
broken_json = st.text(alphabet=string.printable, max_size=40).map(str.encode)
invalid_utf8 = st.binary(max_size=30).map(lambda tail: b'["1","1","room:x","\xff\xfe' + tail)


def _big(size: int) -> bytes:
    return orjson.dumps(["1", "2", "room:lobby", "message:new", {"body": "x" * size}])


def _deep(depth: int) -> bytes:
    return b'["1","2","room:lobby","typing",' + b"[" * depth + b"]" * depth + b"]"


def _fragments(message: bytes, parts: int, ping_between: bool) -> bytes:
    size = max(1, len(message) // parts)
    chunks = [message[i : i + size] for i in range(0, len(message), size)] or [b""]
    out = []
    for index, chunk in enumerate(chunks):
        opcode = TEXT if index == 0 else CONTINUATION
        out.append(frame(opcode, chunk, fin=index == len(chunks) - 1))
        if ping_between and index == 0:
            out.append(frame(PING, b"mid"))
    return b"".join(out)


@dataclass(frozen=True)
class Send:
    data: bytes
    split: bool = False  # written in two pieces, so the frame parser sees a frame cut in half
    closes: bool = False  # a close frame of ours: the node echoes our code, not one of its own


@dataclass(frozen=True)
class Abort:
    """Cut the TCP connection without a closing handshake."""


text_frames = (phoenix_messages | any_json | broken_json | invalid_utf8).map(
    lambda data: Send(frame(TEXT, data))
)
actions = st.one_of(
    text_frames,
    phoenix_messages.map(lambda data: Send(frame(TEXT, data))),  # mostly well-formed traffic
    st.binary(max_size=64).map(lambda data: Send(frame(BINARY, data))),
    st.sampled_from([64 * 1024, 1024 * 1024]).map(lambda size: Send(frame(TEXT, _big(size)))),
    st.sampled_from([1000, 100_000]).map(lambda depth: Send(frame(TEXT, _deep(depth)))),
    st.binary(max_size=125).map(lambda data: Send(frame(PING, data))),
    st.binary(max_size=20).map(lambda data: Send(frame(PONG, data))),
    st.just(Send(frame(PING, b"x" * 126))),  # control frames are at most 125 bytes
    st.builds(
        lambda code, reason: Send(frame(CLOSE, wsraw.close_payload(code, reason)), closes=True),
        st.integers(0, 5000),
        st.sampled_from([b"", b"bye", b"\xff\xfe"]),
    ),
    st.builds(_fragments, phoenix_messages, st.integers(2, 4), st.booleans()).map(Send),
    st.just(Send(frame(CONTINUATION, b"orphan"))),
    st.just(Send(frame(TEXT, b'["1"', fin=False) + frame(TEXT, b'"2"]'))),  # a new message mid-fragment
    st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xF]).map(lambda opcode: Send(frame(opcode, b"?"))),
    st.integers(1, 7).map(lambda rsv: Send(frame(TEXT, b"[]", rsv=rsv))),
    st.just(Send(frame(TEXT, b'[null,"1","room:lobby","typing",{}]', masked=False))),
    phoenix_messages.map(lambda data: Send(frame(TEXT, data), split=True)),
    st.just(Abort()),
)


# uvicorn's WebSocket protocol logs a client's invalid UTF-8 as an error with a traceback (it
# does close the socket with 1007, as it should); client garbage is not a server error.
KNOWN_TRANSPORT_NOISE = ("uvicorn.error: Invalid UTF-8 sequence received from client",)


def logged_errors(log: str) -> list[str]:
    """The node's ERROR records (with their tracebacks), but the known transport noise."""
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d )", log)
    return [
        record
        for record in records
        if (" ERROR " in record or "Traceback" in record)
        and not any(n in record for n in KNOWN_TRANSPORT_NOISE)
    ]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    server = LiveServer(
        workdir, f"sqlite+aiosqlite:///{workdir / 'db.sqlite'}", RELAYGATE_CHAT_RATE_LIMIT="100000000"
    )

    async def start() -> str:
        await server.start()
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            return (await register(http, "Fuzzy"))[1]

    token = asyncio.run(start())
    yield server, token
    server.stop()


async def _send_sequence(port: int, token: str, sequence: list[Send | Abort]) -> None:
    raw = await RawSocket.connect(port, f"/socket/websocket?vsn=2.0.0&token={token}")
    sent_close = False
    try:
        for action in sequence:
            if isinstance(action, Abort):
                raw.abort()
                return
            sent_close = sent_close or action.closes
            pieces = [action.data[:3], action.data[3:]] if action.split else [action.data]
            for piece in pieces:
                if not await raw.send(piece):
                    break
        received = await raw.drain_replies(quiet=0.3)
        if received.closed and not sent_close:
            assert received.close_code in PROTOCOL_CLOSE_CODES, received
    finally:
        await raw.close()


async def _well_behaved(server: LiveServer, token: str) -> None:
    """Two clients on other sockets: replies come back, broadcasts arrive once and in order."""
    speaker = Client(server.socket_url, params={"token": token}, reconnect=False)
    listener = Client(server.socket_url, params={"token": token}, reconnect=False)
    await speaker.connect()
    await listener.connect()
    try:
        said = speaker.channel("room:fuzzcheck")
        heard = listener.channel("room:fuzzcheck")
        await said.join(timeout=5)
        await heard.join(timeout=5)
        bodies: list[Any] = []
        heard.on("message:new", lambda payload: bodies.append(payload["body"]))
        for n in range(3):
            assert await said.push("message:new", {"body": f"n{n}"}, timeout=5) == {}
        async with asyncio.timeout(5):
            while len(bodies) < 3:
                await asyncio.sleep(0.01)
        assert bodies == ["n0", "n1", "n2"]
    finally:
        await speaker.close()
        await listener.close()


async def _one_sequence(server: LiveServer, token: str, sequence: list[Send | Abort]) -> None:
    await _send_sequence(server.port, token, sequence)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server.http_url}/healthz", timeout=5)).status_code == 200
    await _well_behaved(server, token)


def test_hostile_frame_sequences_leave_the_node_healthy(node: tuple[LiveServer, str]) -> None:
    server, token = node
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    asyncio.run(_one_sequence(server, token, [Send(frame(TEXT, _big(1024 * 1024)))]))  # warm up
    baseline = process.memory_info().rss

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(st.lists(actions, min_size=1, max_size=10))
    def sequences(sequence: list[Send | Abort]) -> None:
        asyncio.run(_one_sequence(server, token, sequence))

    sequences()
    assert server.process.poll() is None, server.log()[-2000:]
    errors = logged_errors(server.log())
    assert errors == [], errors[:3]
    growth = process.memory_info().rss - baseline
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB"
