"""uvicorn's httptools HTTP/1.1 protocol, with parser errors answered as problem+json.

llhttp (httptools) only knows the registered methods: a request such as ``FOO /api/v1/products``
fails in the parser, before the app, and uvicorn answers a plain-text ``400``. HTTP says an
unknown method is ``501 Not Implemented`` (RFC 9110 §9.1), which the resource layer answers
in-process; this protocol gives the same answer on the wire, and makes every other malformed
request a ``400`` problem too.
"""

from __future__ import annotations

import re
from typing import Final

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


class HttpProtocol(HttpToolsProtocol):
    """Remembers the chunk being parsed so that a parser error can be answered precisely."""

    _chunk: bytes = b""

    def data_received(self, data: bytes) -> None:
        self._chunk = data
        super().data_received(data)
        self._chunk = b""

    def send_400_response(self, msg: str) -> None:
        self.transport.write(rejection_response(self._chunk))
        self.transport.close()
