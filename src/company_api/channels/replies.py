"""The error replies every topic of the app shares (channels.md): invalid input and rate limiting."""

from __future__ import annotations

import math

from relaygate.channels import Reply


def invalid(errors: dict[str, list[str]]) -> Reply:
    """Bad payload: nothing changed and the channel stays joined."""
    return Reply.error({"reason": "invalid", "errors": errors})


def unknown_event(event: str) -> Reply:
    return invalid({"event": [f"{event!r} is not an event of this topic"]})


def rate_limited(retry_after: float) -> Reply:
    return Reply.error({"reason": "rate_limited", "retry_after_ms": max(1, math.ceil(retry_after * 1000))})
