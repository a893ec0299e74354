"""Argon2id hashing with the production parameters, off the event loop."""

from __future__ import annotations

import asyncio
import threading

from argon2 import PasswordHasher

from relaygate.accounts.passwords import Passwords, generate_password


async def test_production_hashes_are_argon2id_and_verify() -> None:
    passwords = Passwords()
    hashed = await passwords.hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert await passwords.verify(hashed, "correct horse battery")
    assert not await passwords.verify(hashed, "wrong horse battery")
    assert not await passwords.verify("not a hash", "x")
    assert not passwords.needs_rehash(hashed)


async def test_hashing_runs_in_a_worker_thread() -> None:
    threads: list[int] = []

    class Spy(PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            threads.append(threading.get_ident())
            return super().hash(password, salt=salt)

    passwords = Passwords(Spy())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await passwords.hash("correct horse battery")
    task.cancel()
    assert threads and threads[0] != threading.get_ident()
    assert ticks > 1  # the loop kept running while the hash was computed


def test_generated_passwords_are_long_url_safe_and_random() -> None:
    generated = {generate_password() for _ in range(50)}
    assert len(generated) == 50
    assert all(len(p) >= 16 and p.replace("-", "").replace("_", "").isalnum() for p in generated)
