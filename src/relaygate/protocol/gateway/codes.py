"""Gateway error codes, which of them a client may retry, and business error codes."""

from __future__ import annotations

import re
from typing import Final

BAD_REQUEST: Final = "bad_request"
UNAUTHENTICATED: Final = "unauthenticated"
NOT_FOUND: Final = "not_found"
DISABLED: Final = "disabled"
PERMISSION_DENIED: Final = "permission_denied"
RATE_LIMITED: Final = "rate_limited"
INVALID_ARGS: Final = "invalid_args"
TIMEOUT: Final = "timeout"
UNAVAILABLE: Final = "unavailable"
OVERLOADED: Final = "overloaded"
CANCELLED: Final = "cancelled"
INTERNAL: Final = "internal"

GATEWAY_CODES: Final = frozenset(
    {
        BAD_REQUEST,
        UNAUTHENTICATED,
        NOT_FOUND,
        DISABLED,
        PERMISSION_DENIED,
        RATE_LIMITED,
        INVALID_ARGS,
        TIMEOUT,
        UNAVAILABLE,
        OVERLOADED,
        CANCELLED,
        INTERNAL,
    }
)
RETRYABLE: Final = frozenset({RATE_LIMITED, TIMEOUT, UNAVAILABLE, OVERLOADED})

_BUSINESS_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def can_retry(code: str, *, business: bool = False) -> bool:
    """Whether a client may send the same request again; business errors never are."""
    return not business and code in RETRYABLE


def is_valid_code(code: object) -> bool:
    """A code is one lowercase word (letters, digits, underscores), at most 64 characters."""
    return isinstance(code, str) and _BUSINESS_CODE.match(code) is not None


class ServiceError(Exception):
    """A business error a function raises on purpose; its code and message reach the client."""

    def __init__(self, code: str, message: str = "") -> None:
        if not is_valid_code(code):
            raise ValueError(f"error code must be one lowercase word, got {code!r}")
        super().__init__(message or code)
        self.code = code
        self.message = message or code
