"""The in-memory access view across two nodes on a real Redis: refusals hold at once everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from relaygate.accounts import (
    UNKNOWN,
    Accounts,
    Credentials,
    MemoryThrottle,
    NewUser,
    TokenCodec,
    UserChanges,
)
from relaygate.accounts.models import RevokedToken
from relaygate.accounts.passwords import Passwords
from relaygate.db import Database, utcnow
from relaygate.mail import LocalAdapter, Mailer
from relaygate.pubsub import RedisPubSub
from tests.accounts.support import FAST_HASHER, PASSWORD
from tests.conftest import TEST_SECRET
from tests.servers import RedisServer


def _node(db: Database, redis_url: str, name: str) -> Accounts:
    return Accounts(
        db,
        RedisPubSub(redis_url, name),
        TokenCodec(TEST_SECRET, 3600),
        Mailer(LocalAdapter(), "no-reply@relaygate.test", backoff=0.01),
        MemoryThrottle(),
        Passwords(FAST_HASHER),
    )


async def _until(condition: object, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


@pytest.fixture
async def cluster(db: Database) -> AsyncIterator[tuple[Accounts, Accounts, RedisServer]]:
    redis = RedisServer()  # its own, so that the test may restart it
    redis.start()
    nodes = (_node(db, redis.url, "a"), _node(db, redis.url, "b"))
    try:
        for node in nodes:
            await node.pubsub.start()
            await node.start()
        await _until(lambda: all(node.view.live for node in nodes))
        yield nodes[0], nodes[1], redis
    finally:
        for node in nodes:
            await node.stop()
            await node.pubsub.stop()
        redis.close()


async def _token(accounts: Accounts, email: str = "ada@example.com") -> str:
    new = NewUser(name="Ada", subname="Lovelace", email=email, job="Engineer", password=PASSWORD)
    await accounts.register(new)
    return (await accounts.login(Credentials(email=email, password=PASSWORD))).token


async def test_a_logout_on_one_node_is_refused_by_the_other_the_moment_it_returns(
    cluster: tuple[Accounts, Accounts, RedisServer],
) -> None:
    a, b, _ = cluster
    token = await _token(a)
    principal = await b.authenticate_token(token)
    assert principal is not None
    assert b.identify_now(token) is not UNKNOWN  # answered from b's memory from now on
    await a.logout(principal)
    assert b.identify_now(token) is None  # no await in between: b applied it before logout returned
    assert await b.authenticate_token(token) is None
    assert await a.authenticate_token(token) is None


async def test_role_changes_and_deletions_reach_the_other_node_at_once(
    cluster: tuple[Accounts, Accounts, RedisServer],
) -> None:
    a, b, _ = cluster
    token = await _token(a)
    principal = await b.authenticate_token(token)
    assert principal is not None and principal.role == "user"
    admin = type(principal)(principal.user_id, "admin", principal.jti, principal.expires_at)
    await a.update_user(admin, principal.user_id, UserChanges(role="admin"))
    promoted = await b.authenticate_token(token)
    assert promoted is not None and promoted.role == "admin"
    await a.delete_user(promoted, principal.user_id)
    assert b.identify_now(token) is UNKNOWN  # forgotten: only the database can answer
    assert await b.authenticate_token(token) is None


async def test_a_node_that_lost_redis_checks_the_database_and_reloads_after(
    cluster: tuple[Accounts, Accounts, RedisServer], db: Database
) -> None:
    a, b, redis = cluster
    token = await _token(a)
    principal = await b.authenticate_token(token)
    assert principal is not None
    redis.stop()
    await _until(lambda: not b.view.live)
    # Revoked while the cluster is unreachable: only the database knows.
    async with db.transaction() as session:
        session.add(
            RevokedToken(
                jti=principal.jti, user_id=principal.user_id, expires_at=utcnow() + timedelta(hours=1)
            )
        )
    assert b.identify_now(token) is UNKNOWN
    assert await b.authenticate_token(token) is None
    redis.start()
    await _until(lambda: b.view.live)  # reloaded from the database after the reconnection
    assert b.identify_now(token) is None


async def test_a_node_that_never_started_its_view_asks_the_database(db: Database) -> None:
    accounts = _node(db, "redis://127.0.0.1:1/0", "never-started")
    assert not accounts.view.live
    assert await accounts.authenticate_token("not-a-token") is None
