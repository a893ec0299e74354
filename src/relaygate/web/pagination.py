"""Opaque, tamper-evident pagination cursors and the ``Link: rel="next"`` header."""

from __future__ import annotations

import base64
import hashlib
import hmac

from starlette.datastructures import URL

from relaygate.web.problem_json import Problem

MAX_ID = 2**63 - 1


class CursorCodec:
    """Encodes a position (an integer key) as ``<base64 key>.<truncated HMAC>``."""

    def __init__(self, key: str, purpose: str) -> None:
        self._key = hashlib.sha256(f"cursor:{purpose}:{key}".encode()).digest()

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encode(self, position: int) -> str:
        payload = str(position).encode()
        return f"{base64.urlsafe_b64encode(payload).decode().rstrip('=')}.{self._mac(payload)}"

    def decode(self, cursor: str) -> int:
        """The position, or a 400 problem for a cursor this server did not make."""
        head, _, mac = cursor.partition(".")
        try:
            payload = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        except ValueError:
            raise Problem(400, "The cursor is invalid.") from None
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()) or not payload.isdigit():
            raise Problem(400, "The cursor is invalid.")
        position = int(payload)
        if position > MAX_ID:
            raise Problem(400, "The cursor is invalid.")
        return position


def next_link(url: URL, cursor: str, limit: int) -> str:
    return f'<{url.include_query_params(after=cursor, limit=limit)}>; rel="next"'
