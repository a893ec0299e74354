"""Parser rejections on the wire: unknown methods are 501, other garbage 400, both problem+json."""

from __future__ import annotations

import orjson
import pytest

from relaygate.web.http_protocol import rejection, rejection_response


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
