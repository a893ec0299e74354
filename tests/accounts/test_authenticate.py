"""authenticate_token against the database: revocation, deleted users, reused ids, cleanup."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from relaygate.accounts import Accounts, Credentials, NewUser, Principal, UserChanges
from relaygate.accounts.models import RevokedToken
from relaygate.db import Database, utcnow
from tests.accounts.support import PASSWORD


async def _user(accounts: Accounts, email: str = "ada@example.com", role: str = "user") -> str:
    await accounts.register(
        NewUser(name="Ada", subname="Lovelace", email=email, job="Engineer", password=PASSWORD), role=role
    )
    session = await accounts.login(Credentials(email=email, password=PASSWORD))
    return session.token


async def test_valid_token_gives_the_principal(accounts: Accounts) -> None:
    token = await _user(accounts, role="admin")
    principal = await accounts.authenticate_token(token)
    assert isinstance(principal, Principal)
    assert principal.role == "admin" and principal.is_admin
    assert principal.expires_at > 0 and principal.jti


async def test_revoked_token_is_refused_by_every_node_and_after_restart(
    accounts: Accounts, db: Database
) -> None:
    token = await _user(accounts)
    principal = await accounts.authenticate_token(token)
    assert principal is not None
    await accounts.logout(principal)
    await accounts.logout(principal)  # idempotent
    assert await accounts.authenticate_token(token) is None
    # Another node (or this one restarted) shares nothing but the database.
    other = Accounts(
        db, accounts.pubsub, accounts.tokens, accounts.mailer, accounts.throttle, accounts.passwords
    )
    assert await other.authenticate_token(token) is None


async def test_other_tokens_of_the_user_survive_a_logout(accounts: Accounts) -> None:
    first = await _user(accounts)
    second = (await accounts.login(Credentials(email="ada@example.com", password=PASSWORD))).token
    principal = await accounts.authenticate_token(first)
    assert principal is not None
    await accounts.logout(principal)
    assert await accounts.authenticate_token(second) is not None


async def test_deleted_users_tokens_stop_working(accounts: Accounts) -> None:
    token = await _user(accounts)
    principal = await accounts.authenticate_token(token)
    assert principal is not None
    await accounts.delete_user(principal, principal.user_id)
    assert await accounts.authenticate_token(token) is None


async def test_a_token_never_authenticates_a_later_user_with_a_reused_id(
    accounts: Accounts, db: Database
) -> None:
    token = await _user(accounts)
    principal = await accounts.authenticate_token(token)
    assert principal is not None
    await accounts.delete_user(principal, principal.user_id)
    # SQLite reuses the highest deleted rowid; the token is bound to the row it was issued for.
    newcomer = await accounts.register(
        NewUser(name="Eve", subname="E", email="eve@example.com", job="Spy", password=PASSWORD)
    )
    if db.dialect == "sqlite":
        assert newcomer.id == principal.user_id
    forged = accounts.tokens.issue(newcomer.id, 0).token  # right key, wrong row binding
    assert await accounts.authenticate_token(token) is None
    assert await accounts.authenticate_token(forged) is None


async def test_role_comes_from_the_database(accounts: Accounts) -> None:
    token = await _user(accounts, role="admin")
    principal = await accounts.authenticate_token(token)
    assert principal is not None
    await accounts.update_user(principal, principal.user_id, UserChanges(role="user"))
    demoted = await accounts.authenticate_token(token)
    assert demoted is not None and demoted.role == "user"


async def test_purge_forgets_only_expired_revocations(accounts: Accounts, db: Database) -> None:
    token = await _user(accounts)
    principal = await accounts.authenticate_token(token)
    assert principal is not None
    await accounts.logout(principal)
    async with db.transaction() as session:
        session.add(
            RevokedToken(jti="x" * 22, user_id=principal.user_id, expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await accounts.purge_revocations() == 1
    async with db.session() as session:
        remaining = (await session.execute(select(func.count()).select_from(RevokedToken))).scalar_one()
    assert remaining == 1
    assert await accounts.authenticate_token(token) is None
