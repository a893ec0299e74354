"""Pure checks done before the WebSocket upgrade: vsn, authToken subprotocol, origin (section 1)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from relaygate.protocol.serializers import V1, V2, Serializer

_SEMVER: Final = re.compile(r"(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")
_TOKEN_PREFIX: Final = "base64url.bearer.phx."  # noqa: S105 - a header prefix, not a secret
SUBPROTOCOL: Final = "phoenix"


_EXACT: Final = {"2.0.0": V2, "1.0.0": V1}
"""What phoenix.js sends, answered without the semver match."""


def serializer_for(params: Mapping[str, str]) -> Serializer | None:
    """Pick the serializer from ``vsn`` (``~> 1.0.0`` or ``~> 2.0.0``; missing = V1); None = HTTP 403."""
    for key in params:
        if key.startswith("vsn["):
            return None  # a non-string vsn such as vsn[a]=1
    vsn = params.get("vsn", "1.0.0")
    exact = _EXACT.get(vsn)
    if exact is not None:
        return exact
    match = _SEMVER.fullmatch(vsn)
    if match is None or match.group(4) is not None:
        return None  # unparseable, or a pre-release, which Elixir's "~>" never matches
    version = (int(match.group(1)), int(match.group(2)))
    return {(1, 0): V1, (2, 0): V2}.get(version)


@dataclass(slots=True)
class Subprotocols:
    """What the client offered in ``Sec-WebSocket-Protocol``."""

    accept: str | None
    """The subprotocol to answer (``phoenix`` when offered), else None."""
    auth_token: str | None
    """The decoded phoenix.js ``authToken``, if one was sent."""
    valid: bool
    """False when the bearer entry is not decodable: refuse the upgrade."""


_NONE_OFFERED: Final = Subprotocols(None, None, True)


def parse_subprotocols(offered: Sequence[str]) -> Subprotocols:
    """Extract the ``base64url.bearer.phx.<b64>`` token (standard alphabet, padding optional)."""
    if not offered:
        return _NONE_OFFERED
    token: str | None = None
    valid = True
    for entry in offered:
        if entry.startswith(_TOKEN_PREFIX):
            encoded = entry[len(_TOKEN_PREFIX) :]
            try:
                raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=False)
                token = raw.decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                valid = False
    return Subprotocols(SUBPROTOCOL if SUBPROTOCOL in offered else None, token, valid)


@dataclass(frozen=True, slots=True)
class _OriginRule:
    scheme: str | None
    host: str
    port: int | None
    wildcard: bool


def _parse_rule(entry: str) -> _OriginRule:
    parts = urlsplit(entry if "//" in entry else "//" + entry)
    host = (parts.hostname or "").lower()
    wildcard = host.startswith("*.")
    return _OriginRule(parts.scheme or None, host[2:] if wildcard else host, parts.port, wildcard)


class OriginCheck:
    """check_origin of section 1.3: None or ``["*"]`` allows any origin; ``True`` = the Host header's host."""

    __slots__ = ("_any", "_rules", "_same_host")

    def __init__(self, allowed: Sequence[str] | bool | None) -> None:
        self._any = allowed is None or allowed is False or (not isinstance(allowed, bool) and "*" in allowed)
        self._same_host = allowed is True
        self._rules = (
            [] if isinstance(allowed, bool) or allowed is None else [_parse_rule(e) for e in allowed]
        )

    def allows(self, origin: str | None, host_header: str | None = None) -> bool:
        if origin is None or self._any:
            return True
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        if self._same_host:
            return host_header is not None and host == (urlsplit("//" + host_header).hostname or "").lower()
        return any(self._matches(rule, parts.scheme, host, port) for rule in self._rules)

    @staticmethod
    def _matches(rule: _OriginRule, scheme: str, host: str, port: int | None) -> bool:
        if rule.scheme is not None and rule.scheme != scheme:
            return False
        if rule.port is not None and rule.port != port:
            return False
        if rule.wildcard:
            return host == rule.host or host.endswith("." + rule.host)
        return host == rule.host
