"""uvicorn's httptools HTTP/1.1 protocol, with parser errors answered as problem+json and each
response written to the socket once.

llhttp (httptools) only knows the registered methods: a request such as ``FOO /api/v1/products``
fails in the parser, before the app, and uvicorn answers a plain-text ``400``. HTTP says an
unknown method is ``501 Not Implemented`` (RFC 9110 §9.1), which the resource layer answers
in-process; this protocol gives the same answer on the wire, and makes every other malformed
request a ``400`` problem too.

uvicorn writes a response's head and its body with one ``transport.write`` each (two ``send``
system calls, two TCP segments for every small response) and checks each header with two regular
expressions: together the largest part of its cost per request (bench/ANALYSIS.md).
:class:`ResponseCycle` sends a response's head with its body and checks the headers once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote

import httptools
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from relaygate.web.problems import PROBLEM_JSON, problem_body

# A request line whose method is a syntactically valid token (RFC 9110 §5.6.2).
_REQUEST_LINE: Final = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) [^ \r\n]+ HTTP/1\.[01]\r?\n")
# What a header name and a header value may not contain (RFC 9110 §5.1, §5.5), as uvicorn checks.
_HEADER_NAME: Final = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]')
_HEADER_VALUE: Final = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
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


class ResponseCycle(RequestResponseCycle):
    """uvicorn's request cycle, answering with one ``write`` per response and a cheaper head.

    The head is held from ``http.response.start`` until the first body message and sent with it;
    if no body message comes in the same loop iteration (a streamed response waiting for its
    first chunk), the head goes out alone at the end of it. The head's bytes are built in one
    pass over the headers, with the validity of names and values checked once on their joined
    bytes (a forbidden byte anywhere is in one of them) instead of twice per header.
    """

    _head: bytes | None = None

    async def send(self, message: ASGISendEvent) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got '{message['type']}'."
                )
            self.response_started = True
            self.waiting_for_100_continue = False
            self._head = self._encode_head(message["status"], message.get("headers", ()))
            asyncio.get_running_loop().call_soon(self.flush_head)
            return
        if self.response_complete:
            raise RuntimeError(
                f"Unexpected ASGI message '{message['type']}' sent, after response already completed."
            )
        if message["type"] != "http.response.body":
            raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message['type']}'.")
        body: bytes = message.get("body", b"")
        more_body = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            data = b""
        elif self.chunked_encoding:
            data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more_body:
                data += b"0\r\n\r\n"
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            data = body
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        if data:
            self.transport.write(data)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()

    def flush_head(self) -> None:
        """Send a head still held (its body did not follow in the same loop iteration)."""
        head = self._head
        if head is not None:
            self._head = None
            if not self.transport.is_closing():
                self.transport.write(head)

    def _encode_head(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(self.scope),
                self.scope["method"],
                get_path_with_query_string(self.scope),
                self.scope["http_version"],
                status,
            )
        content = [STATUS_LINE[status]]
        has_connection_close = False
        for name, value in (*self.default_headers, *headers):
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                if b"close" in [token.lower().strip() for token in value.split(b",")]:
                    self.keep_alive = False
                    has_connection_close = True
            content += (name, b": ", value, b"\r\n")
        if _HEADER_NAME.search(b"".join(content[1::4])):
            raise RuntimeError("Invalid HTTP header name.")
        if _HEADER_VALUE.search(b"".join(content[3::4])):
            raise RuntimeError("Invalid HTTP header value.")
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            self.chunked_encoding = True  # neither content-length nor transfer-encoding
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)


class HttpProtocol(HttpToolsProtocol):
    """Remembers the chunk being parsed so that a parser error can be answered precisely, and
    runs each request in a :class:`ResponseCycle`."""

    _chunk: bytes = b""

    def data_received(self, data: bytes) -> None:
        self._chunk = data
        super().data_received(data)
        self._chunk = b""

    def on_headers_complete(self) -> None:
        """As uvicorn's, with a :class:`ResponseCycle` for the request."""
        parser = self.parser
        scope = self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = url.query or b""
        app = self.app
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        previous = self.cycle
        self.cycle = ResponseCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        if previous is None or previous.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:  # pipelined: answered in order, after the one in progress
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    # Keep-alive: uvicorn arms a timer after every response and cancels it on the next request;
    # here one timer per idle period notes when the connection went idle and, when it fires
    # early (a request came and went meanwhile), waits only for the rest of the timeout.
    _idle_since: float | None = None

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # busy: the pending timer, if any, finds out when it fires

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None or self.transport.is_closing():
            return  # busy now: the response that ends it arms a new timer
        idle = self.loop.time() - self._idle_since
        if idle >= self.timeout_keep_alive:
            self.timeout_keep_alive_handler()
        else:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive - idle, self._keep_alive_due
            )

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def send_400_response(self, msg: str) -> None:
        if isinstance(self.cycle, ResponseCycle):
            self.cycle.flush_head()  # what an earlier response began goes first
        self.transport.write(rejection_response(self._chunk))
        self.transport.close()
