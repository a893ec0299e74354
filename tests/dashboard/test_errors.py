"""The ring of recent warnings: what an entry keeps and what it never does."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from relaygate.dashboard import RecentErrors
from relaygate.telemetry.logging import request_id_var


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("relaygate.test.dashboard")
    yield logger
    logger.handlers.clear()


def test_an_entry_keeps_the_exception_type_and_request_id_never_the_traceback(logger: logging.Logger) -> None:
    ring = RecentErrors()
    logger.addHandler(ring)
    token = request_id_var.set("req-1")
    try:
        raise ValueError("secret-ish argument")
    except ValueError:
        logger.exception("channel %s crashed", "room:1")
    finally:
        request_id_var.reset(token)
    [entry] = ring.latest()
    assert (entry["message"], entry["exception"], entry["request_id"]) == (
        "channel room:1 crashed",
        "ValueError",
        "req-1",
    )
    assert entry["level"] == "error" and entry["logger"] == "relaygate.test.dashboard"
    assert "secret-ish" not in str(entry)


def test_the_ring_keeps_the_newest_warnings_cut_short(logger: logging.Logger) -> None:
    ring = RecentErrors(size=2)
    logger.addHandler(ring)
    logger.warning("first")
    logger.info("not kept")
    logger.warning("x" * 1000)
    logger.error("third")
    newest, long = ring.latest()
    assert newest["message"] == "third"
    assert len(long["message"]) == 300 and long["message"].endswith("…")
