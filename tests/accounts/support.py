"""Shared by the accounts tests (context and HTTP)."""

from __future__ import annotations

from argon2 import PasswordHasher

# Real argon2id with cheap parameters: the production cost (~0.3 s a hash on the CI machine)
# would make the suite slow; test_passwords.py checks the production parameters.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
