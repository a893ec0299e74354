"""Access tokens: signed JWTs issued and verified without I/O (revocation is checked by the caller).

The algorithm is fixed server-side to HS256: the token's own header never chooses it, so
``alg: none`` and algorithm-confusion tokens (RS/ES/other HMAC variants) are refused.

A token that verified once is remembered (the exact string, so its signature was checked) and
then costs a dict lookup and an expiry comparison instead of a decode; a tampered token is a
different string and is decoded in full.

A token never seen before is first checked as exactly what :meth:`TokenCodec.issue` writes
(PyJWT's HS256 header, an HMAC-SHA256 signature in canonical base64url, the five claims and no
other): that check is the standard library's ``hmac`` and ``orjson`` and costs a few µs, where
PyJWT's general decode costs ~150 µs (it validates every base64 character in Python and
prepares the key per call), most of a socket's connect. It only ever accepts; anything it does
not recognise (refusals included) goes through PyJWT, so what is accepted does not change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
import orjson

ALGORITHM = "HS256"
_REQUIRED = ("sub", "exp", "iat", "jti", "uat")
_USER_ID = re.compile(r"^[1-9][0-9]{0,17}$")
_JTI = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
VERIFIED_CACHE = 4096
_CLAIM_NAMES = frozenset(_REQUIRED)
_HEADER = jwt.encode({}, "h" * 32, algorithm=ALGORITHM).partition(".")[0]
"""The header segment of every token :meth:`TokenCodec.issue` writes (PyJWT's own encoding)."""


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified content of a token.

    ``user_created`` (claim ``uat``, the user's creation time in microseconds) binds the token to
    one user row: a database that reuses a deleted user's id never lets the old token in.
    """

    user_id: int
    jti: str
    issued_at: int
    expires_at: int
    user_created: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: Claims


class TokenCodec:
    """Issues and verifies access tokens with one signing key and lifetime."""

    def __init__(self, key: str, ttl: int) -> None:
        if len(key) < 32:
            raise ValueError("the signing key must be at least 32 characters")
        self._key = key
        self._mac = hmac.new(key.encode(), digestmod=hashlib.sha256)
        """HMAC-SHA256 keyed once; each check copies it (cheaper than keying again)."""
        self.ttl = ttl
        self._verified: dict[str, Claims] = {}

    def issue(self, user_id: int, user_created: int, *, now: int | None = None) -> IssuedToken:
        issued_at = int(time.time()) if now is None else now
        claims = Claims(
            user_id=user_id,
            jti=secrets.token_urlsafe(16),
            issued_at=issued_at,
            expires_at=issued_at + self.ttl,
            user_created=user_created,
        )
        payload = {
            "sub": str(user_id),
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "jti": claims.jti,
            "uat": claims.user_created,
        }
        return IssuedToken(jwt.encode(payload, self._key, algorithm=ALGORITHM), claims)

    def verify(self, token: str) -> Claims | None:
        """The claims of a well-formed, correctly signed, unexpired token; else ``None``."""
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() < claims.expires_at:
                return claims
            del self._verified[token]
            return None
        claims = self._decode_issued(token) or self._decode(token)
        if claims is not None:
            if len(self._verified) >= VERIFIED_CACHE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        return claims

    def _decode_issued(self, token: str) -> Claims | None:
        """The claims of a valid token in exactly the form :meth:`issue` writes; None when it is
        not one (then PyJWT decides)."""
        header, _, rest = token.partition(".")
        if header != _HEADER:
            return None
        body, dot, signature = rest.partition(".")
        if not dot:
            return None
        try:
            mac = self._mac.copy()
            mac.update(token[: len(header) + 1 + len(body)].encode())
            expected = base64.urlsafe_b64encode(mac.digest())
            if not hmac.compare_digest(expected.rstrip(b"="), signature.encode()):
                return None
            payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error):  # UnicodeError and orjson's JSONDecodeError are ValueErrors
            return None
        if type(payload) is not dict or payload.keys() != _CLAIM_NAMES:
            return None
        claims = _claims(payload)
        if claims is None or not claims.issued_at <= time.time() < claims.expires_at:
            return None
        return claims

    def _decode(self, token: str) -> Claims | None:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": list(_REQUIRED), "verify_iat": True},
            )
        except (jwt.PyJWTError, ValueError):  # ValueError: a string that is not UTF-8 (lone surrogates)
            return None
        return _claims(payload)


def _claims(payload: dict[str, Any]) -> Claims | None:
    """Claims from a verified payload whose values have the types and forms :meth:`TokenCodec.issue` gives."""
    sub, jti, iat, exp, uat = (
        payload.get("sub"),
        payload.get("jti"),
        payload.get("iat"),
        payload.get("exp"),
        payload.get("uat"),
    )
    if type(sub) is not str or not _USER_ID.match(sub):
        return None
    if type(jti) is not str or not _JTI.match(jti):
        return None
    if type(iat) is not int or type(exp) is not int or type(uat) is not int:  # not bool either
        return None
    return Claims(user_id=int(sub), jti=jti, issued_at=iat, expires_at=exp, user_created=uat)
