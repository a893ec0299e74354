"""Argon2id password hashing, run in worker threads so the event loop never blocks on it."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

GENERATED_PASSWORD_BYTES = 18  # 24 URL-safe characters


def generate_password() -> str:
    """A random password of URL-safe characters (at least 16, as the spec requires)."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


class Passwords:
    """Hashes and verifies passwords; unknown users are verified against a dummy hash.

    Verifying a real hash and the dummy hash costs the same, so a login with an unknown email
    takes as long as one with a wrong password.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of one verification for a login whose user does not exist."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
