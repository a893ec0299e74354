"""The HTTP/1.1 protocol: parser rejections (unknown methods 501, other garbage 400, both
problem+json) and responses written once, streamed ones never held back."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.server import ServerState

from relaygate.web.http_protocol import HttpProtocol, rejection, rejection_response
from relaygate.web.server import server_config
from tests.web.tcp import served


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"FOO /api/v1/products HTTP/1.1\r\nhost: x\r\n\r\n", 501),
        (b"BREW /pot HTTP/1.0\n\n", 501),
        (b"GET /x HTTP/1.1\r\nbad header\r\n\r\n", 400),  # a known method: the rest was wrong
        (b"F(O /x HTTP/1.1\r\n\r\n", 400),  # not a token
        (b"\x16\x03\x01\x02\x00", 400),  # TLS spoken to a plain port
        (b"", 400),
    ],
)
def test_rejection(request_bytes: bytes, status: int) -> None:
    assert rejection(request_bytes)[0] == status


def test_rejection_response_is_a_complete_problem() -> None:
    response = rejection_response(b"FOO / HTTP/1.1\r\n\r\n")
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 501 Not Implemented\r\n")
    assert b"content-type: application/problem+json" in head and b"connection: close" in head
    assert f"content-length: {len(body)}".encode() in head
    problem = orjson.loads(body)
    assert problem["status"] == 501 and "FOO" in problem["detail"]


class Recording(asyncio.Transport):
    """A transport that records what the protocol writes (the socket is what this test is not about)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.closed_by_server = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _protocol(app: ASGIApp, keep_alive: float = 5.0) -> tuple[HttpProtocol, ServerState, Recording]:
    """:class:`HttpProtocol` as ``relaygate serve`` configures it, connected to a :class:`Recording`."""
    config = server_config(app, "127.0.0.1", 0)
    config.lifespan = "off"
    config.timeout_keep_alive = keep_alive
    config.load()
    state = ServerState()
    protocol = HttpProtocol(config=config, server_state=state, app_state={})
    transport = Recording()
    protocol.connection_made(transport)
    return protocol, state, transport


async def _exchange(app: ASGIApp, request: bytes) -> Recording:
    """``request`` through the protocol, until answered."""
    protocol, state, transport = _protocol(app)
    protocol.data_received(request)
    while state.tasks:
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # a held head's flush, if any
    transport.closed_by_server = transport.closed
    protocol.connection_lost(None)
    return transport


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    protocol, state, transport = _protocol(_answer(204, [], b""), keep_alive=0.05)
    for _ in range(2):  # the second request comes while the first idle period's timer is pending
        protocol.data_received(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        while state.tasks:
            await asyncio.sleep(0)
    async with asyncio.timeout(30):  # a hang guard only
        while not transport.closed:
            await asyncio.sleep(0.01)
    assert [write.split(b"\r\n", 1)[0] for write in transport.writes] == [b"HTTP/1.1 204 No Content"] * 2
    protocol.connection_lost(None)


def _answer(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_a_response_is_one_write() -> None:
    app = _answer(200, [(b"Content-Type", b"text/plain"), (b"content-length", b"2")], b"ok")
    transport = await _exchange(app, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    [response] = transport.writes
    head, body = response.split(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"HTTP/1.1 200 OK", b"content-type: text/plain", b"content-length: 2"]
    assert body == b"ok" and not transport.closed_by_server


async def test_a_response_to_head_and_an_unsized_one() -> None:
    sized = _answer(200, [(b"content-length", b"2")], b"ok")
    [response] = (await _exchange(sized, b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")).writes
    assert response.endswith(b"content-length: 2\r\n\r\n")
    unsized = _answer(200, [], b"ok")
    [response] = (await _exchange(unsized, b"GET / HTTP/1.0\r\n\r\n")).writes
    assert b"connection: close\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" in response


@pytest.mark.parametrize(
    "header", [(b"bad name", b"x"), (b"x-split", b"a\r\nset-cookie: evil=1"), (b"x-nul", b"a\x00")]
)
async def test_an_invalid_header_is_never_written(header: tuple[bytes, bytes]) -> None:
    transport = await _exchange(_answer(200, [header], b""), b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert transport.writes == [] and transport.closed_by_server  # the app's error: the connection is cut


async def _stream(scope: Scope, receive: Receive, send: Send) -> None:
    """A streamed response: the first chunk must reach the client before the app goes on."""
    assert scope["type"] == "http"
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"transfer-encoding", b"chunked")]}
    )
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    await scope["state"]["go_on"].wait()
    await send({"type": "http.response.body", "body": b"second", "more_body": False})


async def _read_chunk(reader: asyncio.StreamReader) -> bytes:
    size = int((await reader.readline()).strip(), 16)
    chunk = await reader.readexactly(size)
    await reader.readline()
    return chunk


async def test_a_streamed_response_is_not_held_back() -> None:
    go_on = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"]["go_on"] = go_on
        await _stream(scope, receive, send)

    async with served(app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n")  # pipelined
        for _ in range(2):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)  # a hang guard only
            assert head.startswith(b"HTTP/1.1 200 ")
            assert await asyncio.wait_for(_read_chunk(reader), 30) == b"first"
            go_on.set()
            assert await _read_chunk(reader) == b"second"
            assert await _read_chunk(reader) == b""
            go_on.clear()
        writer.close()
