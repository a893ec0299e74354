import io
import logging

import httpx
import orjson
import pytest

from relaygate.telemetry.logging import configure_logging, redact


@pytest.fixture
def captured_json_logs() -> io.StringIO:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(json=True, level="info")
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


async def test_prod_logs_are_json_lines_with_the_request_id(
    http: httpx.AsyncClient, captured_json_logs: io.StringIO
) -> None:
    await http.get("/healthz", headers={"x-request-id": "req-42"})
    entries = [orjson.loads(line) for line in captured_json_logs.getvalue().splitlines()]
    access = [entry for entry in entries if entry["logger"] == "relaygate.http"]
    assert access, entries
    assert access[-1]["request_id"] == "req-42"
    assert access[-1]["status"] == 200
    assert access[-1]["msg"] == "GET /healthz 200"


def test_credentials_are_redacted_from_any_line() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    line = f"< GET /socket/websocket?vsn=2.0.0&token=opaque-{token} HTTP/1.1 Bearer {token} password=hunter2"
    redacted = redact(line)
    assert token not in redacted and "opaque-" not in redacted
    assert redacted.startswith(
        "< GET /socket/websocket?vsn=2.0.0&token=[redacted] HTTP/1.1 Bearer [redacted]"
    )
    assert redact("GET /api/v1/products 200") == "GET /api/v1/products 200"
