"""The accounts context: users, passwords, sessions (access tokens) and their revocation."""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from relaygate.accounts.errors import (
    InvalidCredentials,
    InvalidInput,
    LoginThrottled,
    NotAllowed,
    UserNotFound,
)
from relaygate.accounts.models import RevokedToken, User
from relaygate.accounts.passwords import Passwords, generate_password
from relaygate.accounts.principal import Account, Principal, Session
from relaygate.accounts.schemas import Credentials, NewUser, UserChanges
from relaygate.accounts.sockets import token_socket_topic, user_socket_id
from relaygate.accounts.throttle import LoginThrottle, throttle_keys
from relaygate.accounts.tokens import Claims, TokenCodec
from relaygate.accounts.view import REVOKED, USER_CHANGED, AccessView, UserFacts, announce
from relaygate.db import Database, utcnow
from relaygate.db.direct import SQL
from relaygate.mail import Email, Mailer
from relaygate.pubsub import PubSub

log = logging.getLogger("relaygate.accounts")

EMAIL_TAKEN = {"email": ["has already been taken"]}
PASSWORD_SUBJECT = "Your Relaygate password"  # noqa: S105 (a mail subject)
PURGE_INTERVAL = 3600.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_FACTS = SQL("SELECT role, inserted_at, name FROM users WHERE id = ?")
_FACTS_UNLESS_REVOKED = SQL(
    "SELECT role, inserted_at, name FROM users WHERE id = ? "
    "AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?)"
)
_REVOKED = SQL("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?")


class Identity(NamedTuple):
    """Who holds a valid token: the principal, and the user's name (for socket assigns)."""

    principal: Principal
    name: str


class _Unknown:
    """The type of :data:`UNKNOWN`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
"""What :meth:`Accounts.identify_now` answers when memory alone cannot decide."""


def _account(user: User) -> Account:
    return Account(
        id=user.id,
        name=user.name,
        subname=user.subname,
        email=user.email,
        job=user.job,
        role=user.role,
        inserted_at=user.inserted_at,
        updated_at=user.updated_at,
    )


def _password_email(to: str, name: str, password: str) -> Email:
    text = (
        f"Hello {name},\n\nyour Relaygate account is ready. Your password is:\n\n    {password}\n\n"
        "Sign in and change it in your profile.\n"
    )
    body = (
        f"<p>Hello {html.escape(name)},</p><p>your Relaygate account is ready. Your password is:</p>"
        f"<p><code>{html.escape(password)}</code></p><p>Sign in and change it in your profile.</p>"
    )
    return Email(to=to, subject=PASSWORD_SUBJECT, text_body=text, html_body=body)


class Accounts:
    """One per node (``node.accounts``); routers, sockets and the CLI go through it."""

    def __init__(
        self,
        db: Database,
        pubsub: PubSub,
        tokens: TokenCodec,
        mailer: Mailer,
        throttle: LoginThrottle,
        passwords: Passwords | None = None,
    ) -> None:
        self.db = db
        self.pubsub = pubsub
        self.tokens = tokens
        self.mailer = mailer
        self.throttle = throttle
        self.passwords = passwords or Passwords()
        self.view = AccessView(pubsub, self._revocations)
        """Revocations and users in memory (``relaygate.accounts.view``); the node starts it."""

    async def start(self) -> None:
        """Keep the in-memory view of revocations and users current (until :meth:`stop`)."""
        self.view.start()

    async def stop(self) -> None:
        await self.view.stop()

    # -- tokens ---------------------------------------------------------------------------------

    async def authenticate_token(self, token: str) -> Principal | None:
        """The caller of ``token``; ``None`` if malformed, expired, tampered, revoked or user gone."""
        found = await self.identify(token)
        return found.principal if found else None

    def identify_now(self, token: str) -> Identity | _Unknown | None:
        """:meth:`identify` from memory alone, without suspending: :data:`UNKNOWN` when that needs
        the database (view not live, user not cached); then await :meth:`identify`."""
        claims = self.tokens.verify(token)
        if claims is None:
            return None
        view = self.view
        if not (view.live and self.db.direct.healthy):
            return UNKNOWN
        if claims.jti in view.revoked:
            return None
        facts = view.users.get(claims.user_id)
        if facts is None or facts.created_us != claims.user_created:
            return UNKNOWN
        return _identity(claims, facts)

    async def identify(self, token: str) -> Identity | None:
        """The holder of ``token``; ``None`` if malformed, expired, tampered, revoked or user gone.

        From memory when the view is live (revocations), with one query when the user is not
        cached; otherwise one query for the user and the revocation together."""
        claims = self.tokens.verify(token)
        if claims is None:
            return None
        view = self.view
        direct = self.db.direct
        # After a database failure, checks go to the database until it answers again: requests
        # are then refused 503 at authentication, before anything (a rate limit) counts them.
        if view.live and direct.healthy:
            if claims.jti in view.revoked:
                return None
            facts = view.users.get(claims.user_id)
            if facts is not None and facts.created_us != claims.user_created:
                # A token of another user with this id, or the row changed behind our back (a
                # database restored or emptied): ask the database rather than refuse from memory.
                facts = None
            if facts is None:
                generation = view.generation
                row = await direct.fetch_one(_FACTS, claims.user_id)
                if row is None:
                    return None
                facts = UserFacts(row[0], _micros(direct.moment(row[1])), row[2])
                view.remember(claims.user_id, facts, generation)
        else:
            if not view.live:
                view.ensure_loading()
            row = await direct.fetch_one(_FACTS_UNLESS_REVOKED, claims.user_id, claims.jti)
            if row is None:
                return None
            facts = UserFacts(row[0], _micros(direct.moment(row[1])), row[2])
        return _identity(claims, facts)

    async def _revocations(self) -> list[tuple[str, int]]:
        direct = self.db.direct
        rows = await direct.run(lambda tx: tx.all(_REVOKED, direct.timestamp(utcnow())), write=False)
        return [(str(jti), int(direct.moment(expires).timestamp())) for jti, expires in rows]

    async def socket_assigns(self, token: str) -> dict[str, object] | None:
        """Assigns of a socket connecting with ``token`` (``None`` refuses the connection)."""
        found = await self.identify(token)
        return None if found is None else socket_assigns(found)

    async def purge_revocations(self) -> int:
        """Forget revoked tokens that have expired anyway; returns how many."""
        async with self.db.transaction() as session:
            result = await session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= utcnow()))
        self.view.forget_expired()
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_forever(self, interval: float = PURGE_INTERVAL) -> None:
        """Periodic cleanup, started by the node."""
        while True:
            try:
                purged = await self.purge_revocations()
                if purged:
                    log.info("purged %d expired token revocations", purged)
            except Exception:
                log.exception("purging token revocations failed")
            await asyncio.sleep(interval)

    # -- sessions -------------------------------------------------------------------------------

    async def login(self, credentials: Credentials, address: str | None = None) -> Session:
        """Check a password and issue a token; raises InvalidCredentials or LoginThrottled."""
        keys = throttle_keys(credentials.email, address)
        retry_after = await self.throttle.reserve(keys)
        if retry_after is not None:
            raise LoginThrottled(retry_after)
        async with self.db.session() as session:
            user = await self._by_email(session, credentials.email)
        if user is None:
            await self.passwords.verify_dummy(credentials.password)
            raise InvalidCredentials
        if not await self.passwords.verify(user.password_hash, credentials.password):
            raise InvalidCredentials
        await self.throttle.release(keys)
        if self.passwords.needs_rehash(user.password_hash):
            await self._set_password(user.id, credentials.password)
        account = _account(user)
        issued = self.tokens.issue(account.id, account.created_us)
        return Session(account, issued.token, issued.claims.expires_at)

    async def logout(self, principal: Principal) -> None:
        """Revoke the token on every node and disconnect the sockets opened with it.

        Persisted first (a node that restarts or lost Redis reads it), then announced: every node's
        view has it before this returns, so no node accepts the token once the logout is answered.
        """
        expires_at = datetime.fromtimestamp(principal.expires_at, UTC)
        async with self.db.transaction() as session:
            exists = await session.get(RevokedToken, principal.jti)
            if exists is None:
                session.add(RevokedToken(jti=principal.jti, user_id=principal.user_id, expires_at=expires_at))
        await announce(self.view, REVOKED, {"jti": principal.jti, "exp": principal.expires_at})
        await self.pubsub.broadcast(token_socket_topic(principal.user_id, principal.jti), "disconnect", {})

    # -- users ----------------------------------------------------------------------------------

    async def register(self, new: NewUser, role: str = "user") -> Account:
        """Create a user; without a password one is generated and mailed to them."""
        password = new.password or generate_password()
        user = User(
            name=new.name,
            subname=new.subname,
            email=new.email,
            job=new.job,
            role=role,
            password_hash=await self.passwords.hash(password),
        )
        try:
            async with self.db.transaction() as session:
                if await self._by_email(session, new.email) is not None:
                    raise InvalidInput(dict(EMAIL_TAKEN))
                session.add(user)
        except IntegrityError:  # a concurrent registration won the race
            raise InvalidInput(dict(EMAIL_TAKEN)) from None
        if new.password is None:
            self.mailer.send(_password_email(user.email, user.name, password))
        return _account(user)

    async def get_user(self, user_id: int) -> Account:
        async with self.db.session() as session:
            user = await session.get(User, user_id)
        if user is None:
            raise UserNotFound
        return _account(user)

    async def list_users(self, *, after: int | None = None, limit: int = 50) -> tuple[list[Account], bool]:
        """Users by id after ``after``; the flag says whether there is another page."""
        query = select(User).order_by(User.id).limit(limit + 1)
        if after is not None:
            query = query.where(User.id > after)
        async with self.db.session() as session:
            users = list((await session.execute(query)).scalars())
        return [_account(user) for user in users[:limit]], len(users) > limit

    async def update_user(self, principal: Principal, user_id: int, changes: UserChanges) -> Account:
        """Apply a merge patch: self or admin; ``role`` only by an admin; a password change needs
        ``current_password`` unless an admin changes another user."""
        own = principal.user_id == user_id
        if not (own or principal.is_admin):
            raise NotAllowed("only the user or an admin may change a user")
        given = changes.model_fields_set
        if "role" in given and not principal.is_admin:
            raise NotAllowed("only an admin may change a role")
        async with self.db.session() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise UserNotFound
            if "password" in given and (own or not principal.is_admin):
                if changes.current_password is None:
                    raise InvalidInput({"current_password": ["is required to change the password"]})
                if not await self.passwords.verify(user.password_hash, changes.current_password):
                    raise InvalidInput({"current_password": ["is invalid"]})
            if changes.email is not None and changes.email.lower() != user.email.lower():
                if await self._by_email(session, changes.email) is not None:
                    raise InvalidInput(dict(EMAIL_TAKEN))
            for field in ("name", "subname", "email", "job", "role"):
                if field in given:
                    setattr(user, field, getattr(changes, field))
            if changes.password is not None:
                user.password_hash = await self.passwords.hash(changes.password)
            try:
                await session.commit()
            except IntegrityError:
                raise InvalidInput(dict(EMAIL_TAKEN)) from None
            account = _account(user)
        await self._announce_user_change(user_id)
        return account

    async def delete_user(self, principal: Principal, user_id: int) -> None:
        """Delete a user (self or admin): their tokens stop working, their sockets are closed."""
        if principal.user_id != user_id and not principal.is_admin:
            raise NotAllowed("only the user or an admin may delete a user")
        async with self.db.transaction() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise UserNotFound
            await session.delete(user)
        await self._announce_user_change(user_id)
        await self.pubsub.broadcast(user_socket_id(user_id), "disconnect", {})

    # -- helpers --------------------------------------------------------------------------------

    async def _announce_user_change(self, user_id: int) -> None:
        """Every node's view forgets the user (role, name, existence) before the change is answered."""
        await announce(self.view, USER_CHANGED, {"id": user_id})

    @staticmethod
    async def _by_email(session: AsyncSession, email: str) -> User | None:
        query = select(User).where(func.lower(User.email) == email.strip().lower())
        return (await session.execute(query)).scalar_one_or_none()

    async def _set_password(self, user_id: int, password: str) -> None:
        password_hash = await self.passwords.hash(password)
        async with self.db.transaction() as session:
            user = await session.get(User, user_id)
            if user is not None:
                user.password_hash = password_hash


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def socket_assigns(found: Identity) -> dict[str, object]:
    """A socket's assigns from the identity of its token (``Accounts.socket_assigns``)."""
    principal, name = found
    return {"user_id": principal.user_id, "role": principal.role, "jti": principal.jti, "name": name}


def _identity(claims: Claims, facts: UserFacts) -> Identity | None:
    if facts.created_us != claims.user_created:  # the id now belongs to another user
        return None
    return Identity(Principal(claims.user_id, facts.role, claims.jti, claims.expires_at), facts.name)
