"""What a gateway function learns about its caller (the ``ctx`` argument)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class CallContext:
    """Caller facts from the authenticated socket, never from the request payload.

    A fresh one per call (not frozen: a frozen dataclass costs four times as much to build)."""

    request_id: str
    user_id: str | None
    device_id: str | None
    user_roles: tuple[str, ...]
    deadline: float
    """Wall-clock time (``time.time()``) after which the gateway no longer waits for the result."""

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.time())

    def to_wire(self) -> dict[str, Any]:
        return wire_context(self.request_id, self.user_id, self.device_id, self.user_roles, self.deadline)

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> CallContext:
        return cls(
            request_id=str(raw["request_id"]),
            user_id=raw.get("user_id"),
            device_id=raw.get("device_id"),
            user_roles=tuple(raw.get("user_roles") or ()),
            deadline=float(raw["deadline"]),
        )


def wire_context(
    request_id: str, user_id: str | None, device_id: str | None, user_roles: Sequence[str], deadline: float
) -> dict[str, Any]:
    """A call message's ``ctx``: what :meth:`CallContext.to_wire` gives, without the object."""
    return {
        "request_id": request_id,
        "user_id": user_id,
        "device_id": device_id,
        "user_roles": list(user_roles),
        "deadline": deadline,
    }
