"""The HTTP/1.1 protocol: parser rejections (unknown methods 501, other garbage 400, both
problem+json) and responses written once, streamed ones never held back."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from starlette.types import Receive, Scope, Send

from relaygate.web.http_protocol import Coalescing, rejection, rejection_response
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


class Recording:
    """The part of an ``asyncio.Transport`` a request cycle uses, recording each ``write``."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_coalescing_sends_a_response_as_one_write() -> None:
    transport = Recording()
    coalescing = Coalescing(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    coalescing.write(b"ok")
    assert transport.writes == []
    coalescing.flush()  # the response is complete
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    coalescing.flush()
    assert len(transport.writes) == 1


async def test_coalescing_holds_nothing_past_the_loop_iteration() -> None:
    transport = Recording()
    coalescing = Coalescing(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    coalescing.write(b"head")
    await asyncio.sleep(0)  # one iteration: the scheduled flush runs
    assert transport.writes == [b"head"]
    coalescing.write(b"tail")
    coalescing.close()
    assert transport.writes == [b"head", b"tail"] and transport.closed


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
