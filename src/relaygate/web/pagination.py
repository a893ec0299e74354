"""Opaque, tamper-evident pagination cursors and the ``Link: rel="next"`` header."""

from __future__ import annotations

import base64
import hashlib
import hmac

from starlette.datastructures import URL

from relaygate.web.problem_json import Problem

MAX_ID = 2**63 - 1


class CursorCodec:
    """Encodes a position (integer keys) as ``<base64 keys>.<truncated HMAC>``."""

    def __init__(self, key: str, purpose: str) -> None:
        self._key = hashlib.sha256(f"cursor:{purpose}:{key}".encode()).digest()

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encode(self, position: int) -> str:
        return self.encode_many((position,))

    def decode(self, cursor: str) -> int:
        """The position, or a 400 problem for a cursor this server did not make."""
        return self.decode_many(cursor, 1)[0]

    def encode_many(self, position: tuple[int, ...]) -> str:
        """A position of several non-negative integers (e.g. a timestamp and an id)."""
        payload = "-".join(str(part) for part in position).encode()
        return f"{base64.urlsafe_b64encode(payload).decode().rstrip('=')}.{self._mac(payload)}"

    def decode_many(self, cursor: str, size: int) -> tuple[int, ...]:
        """The ``size`` integers of the position, or a 400 problem for a cursor this server did not make."""
        head, _, mac = cursor.partition(".")
        try:
            payload = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        except ValueError:
            raise Problem(400, "The cursor is invalid.") from None
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise Problem(400, "The cursor is invalid.")
        parts = payload.split(b"-")
        if len(parts) != size or not all(part.isdigit() for part in parts):
            raise Problem(400, "The cursor is invalid.")
        position = tuple(int(part) for part in parts)
        if any(part > MAX_ID for part in position):
            raise Problem(400, "The cursor is invalid.")
        return position


def next_link(url: URL, cursor: str, limit: int) -> str:
    return f'<{url.include_query_params(after=cursor, limit=limit)}>; rel="next"'
