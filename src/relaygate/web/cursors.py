"""Opaque pagination cursors: a JSON position signed with the node's key (tampering is a ``400``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from relaygate.web.problems import Problem

_TAG_BYTES = 16


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"relaygate cursor\x00" + secret.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def encode_cursor(position: Any, secret: str) -> str:
    """``position`` is any JSON value (e.g. the last id of a page)."""
    payload = orjson.dumps(position)
    tag = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:_TAG_BYTES]
    return _b64(tag + payload)


def decode_cursor(cursor: str, secret: str) -> Any:
    """The position signed into ``cursor``; :class:`Problem` ``400`` if it was not made here."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise Problem(400, "The cursor is not valid.") from None
    tag, payload = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
    expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:_TAG_BYTES]
    if len(tag) != _TAG_BYTES or not hmac.compare_digest(tag, expected):
        raise Problem(400, "The cursor is not valid.")
    return orjson.loads(payload)
