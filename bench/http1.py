"""A cheap HTTP/1.1 load-generator client: one keep-alive connection over asyncio streams.

Requests are pre-encoded bytes; a response is read as its head (status line, ``Content-Length``)
and body, nothing more is parsed. The servers under test answer with ``Content-Length`` (no
chunked bodies for these routes). Like :mod:`bench.wire`, it replaces a full client (httpx) whose
CPU per request would dominate a 2-core run.
"""

from __future__ import annotations

import asyncio
import socket

import orjson


class HTTPError(Exception):
    pass


def request(method: str, target: str, headers: dict[str, str] | None = None, body: object = None) -> bytes:
    """The bytes of one request; ``body`` is sent as JSON."""
    data = b"" if body is None else orjson.dumps(body)
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1", timeout: float = 30) -> Connection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Write one request, read its response: ``(status, body)``."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"transfer-encoding":
                raise HTTPError("chunked responses are not supported")
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
