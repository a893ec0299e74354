"""uvicorn's httptools HTTP/1.1 protocol, with parser errors answered as problem+json and each
response written to the socket once.

llhttp (httptools) only knows the registered methods: a request such as ``FOO /api/v1/products``
fails in the parser, before the app, and uvicorn answers a plain-text ``400``. HTTP says an
unknown method is ``501 Not Implemented`` (RFC 9110 §9.1), which the resource layer answers
in-process; this protocol gives the same answer on the wire, and makes every other malformed
request a ``400`` problem too.

uvicorn writes a response's head and its body with one ``transport.write`` each: two ``send``
system calls and two TCP segments for every small response, the first of which was the largest
single cost of a ``GET`` on the wire (bench/ANALYSIS.md). Here the writes of a request's cycle are
held until the response is complete, or until the end of the loop iteration for a response that
streams, and sent as one.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from relaygate.web.problems import PROBLEM_JSON, problem_body

# A request line whose method is a syntactically valid token (RFC 9110 §5.6.2).
_REQUEST_LINE: Final = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) [^ \r\n]+ HTTP/1\.[01]\r?\n")
# What llhttp parses (it rejects anything else as an invalid method).
_PARSED_METHODS: Final = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH SEARCH "
    b"UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE "
    b"UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split()
)


def rejection(data: bytes) -> tuple[int, str]:
    """The status and detail for request bytes the parser refused (sans-I/O, for tests)."""
    line = _REQUEST_LINE.match(data)
    if line is not None and line.group(1) not in _PARSED_METHODS:
        return 501, f"The method {line.group(1).decode('ascii')} is not implemented."
    return 400, "The request is not valid HTTP/1.1."


def rejection_response(data: bytes) -> bytes:
    """A complete ``connection: close`` HTTP response for :func:`rejection`."""
    status, detail = rejection(data)
    body = problem_body(status, detail)
    phrase = b"Not Implemented" if status == 501 else b"Bad Request"
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % (
        status,
        phrase,
        PROBLEM_JSON.encode(),
        len(body),
    )
    return head + body


class Coalescing:
    """The transport as a request cycle sees it: writes are held and sent as one ``write`` when
    :meth:`flush` is called (the response is complete) or, at the latest, at the end of the loop
    iteration in which the first of them was made (a streamed response is never held back)."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = [data]
            self._loop.call_soon(self.flush)
        else:
            self._held.append(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held and not self.transport.is_closing():
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class HttpProtocol(HttpToolsProtocol):
    """Remembers the chunk being parsed so that a parser error can be answered precisely, and
    gives each request cycle a :class:`Coalescing` view of the transport (the protocol itself and
    a WebSocket upgrade keep the real one)."""

    _chunk: bytes = b""
    _coalescing: Coalescing | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._coalescing = Coalescing(transport, self.loop)

    def data_received(self, data: bytes) -> None:
        self._chunk = data
        super().data_received(data)
        self._chunk = b""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport and self._coalescing is not None:
            cycle.transport = self._coalescing  # type: ignore[assignment]
        for queued, _ in self.pipeline:
            if queued.transport is self.transport and self._coalescing is not None:
                queued.transport = self._coalescing  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        if self._coalescing is not None:
            self._coalescing.flush()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        if self._coalescing is not None:
            self._coalescing.flush()  # what an earlier cycle wrote goes first
        self.transport.write(rejection_response(self._chunk))
        self.transport.close()
