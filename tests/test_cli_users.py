"""``relaygate users create`` as an operator runs it (a real process on a SQLite file)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from relaygate.accounts.models import User
from relaygate.accounts.passwords import Passwords
from relaygate.db import Database
from tests.conftest import TEST_SECRET
from tests.test_cli import run_cli


async def _users(url: str) -> list[User]:
    database = Database(url)
    try:
        async with database.session() as session:
            return list((await session.execute(select(User))).scalars())
    finally:
        await database.dispose()


def test_users_create_makes_an_admin_who_can_log_in(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {"RELAYGATE_DATABASE_URL": url, "RELAYGATE_SECRET_KEY": TEST_SECRET, "RELAYGATE_ENV": "test"}
    assert run_cli("migrate", cwd=tmp_path, env=env).returncode == 0
    created = run_cli(
        "users",
        "create",
        "--email",
        "root@example.com",
        "--password",
        "a long admin pass",
        "--admin",
        cwd=tmp_path,
        env=env,
    )
    assert created.returncode == 0, created.stderr
    assert "created admin root@example.com" in created.stdout
    assert "a long admin pass" not in created.stdout + created.stderr
    [user] = asyncio.run(_users(url))
    assert (user.email, user.role, user.name) == ("root@example.com", "admin", "root")
    assert asyncio.run(Passwords().verify(user.password_hash, "a long admin pass"))

    again = run_cli(
        "users",
        "create",
        "--email",
        "ROOT@example.com",
        "--password",
        "another long pass",
        cwd=tmp_path,
        env=env,
    )
    assert again.returncode == 1
    assert "email: has already been taken" in again.stderr
    short = run_cli(
        "users", "create", "--email", "x@example.com", "--password", "short", cwd=tmp_path, env=env
    )
    assert short.returncode == 1 and "password:" in short.stderr
