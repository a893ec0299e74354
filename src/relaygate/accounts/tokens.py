"""Access tokens: signed JWTs issued and verified without I/O (revocation is checked by the caller).

The algorithm is fixed server-side to HS256: the token's own header never chooses it, so
``alg: none`` and algorithm-confusion tokens (RS/ES/other HMAC variants) are refused.

A token that verified once is remembered (the exact string, so its signature was checked) and
then costs a dict lookup and an expiry comparison instead of a decode; a tampered token is a
different string and is decoded in full.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
_REQUIRED = ("sub", "exp", "iat", "jti", "uat")
_USER_ID = re.compile(r"^[1-9][0-9]{0,17}$")
_JTI = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
VERIFIED_CACHE = 4096


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
        claims = self._decode(token)
        if claims is not None:
            if len(self._verified) >= VERIFIED_CACHE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> Claims | None:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": list(_REQUIRED), "verify_iat": True},
            )
        except jwt.PyJWTError:
            return None
        sub, jti, iat, exp, uat = (payload.get(name) for name in ("sub", "jti", "iat", "exp", "uat"))
        if not (isinstance(sub, str) and _USER_ID.match(sub)):
            return None
        if not (isinstance(jti, str) and _JTI.match(jti)):
            return None
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in (iat, exp, uat)):
            return None
        assert isinstance(iat, int) and isinstance(exp, int) and isinstance(uat, int)
        return Claims(user_id=int(sub), jti=jti, issued_at=iat, expires_at=exp, user_created=uat)
