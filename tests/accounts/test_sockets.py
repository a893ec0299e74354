"""Socket authentication hook and the disconnect broadcasts of logout and deletion."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any

from relaygate.accounts import (
    Accounts,
    Credentials,
    NewUser,
    socket_authenticator,
    socket_id,
    socket_topics,
)
from relaygate.channels import Socket
from relaygate.pubsub import Broadcast
from tests.accounts.support import PASSWORD


@dataclass
class Info:
    auth_token: str | None = None


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Broadcast] = []

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.messages.append(message)


async def _login(accounts: Accounts, email: str = "sock@example.com") -> tuple[int, str]:
    account = await accounts.register(
        NewUser(name="Sam", subname="S", email=email, job="Ops", password=PASSWORD)
    )
    return account.id, (await accounts.login(Credentials(email=email, password=PASSWORD))).token


async def test_connect_accepts_the_token_param_or_auth_token(accounts: Accounts) -> None:
    user_id, token = await _login(accounts)
    connect = Socket("/socket", connect=socket_authenticator(accounts)).connect
    assigns = await connect({"token": token}, Info())
    assert assigns is not None
    assert assigns["user_id"] == user_id and assigns["role"] == "user" and assigns["name"] == "Sam"
    assert await connect({}, Info(auth_token=token)) == assigns
    assert socket_id(assigns) == f"users_socket:{user_id}"
    assert socket_topics(assigns) == [f"users_socket:{user_id}", f"users_socket:{user_id}:{assigns['jti']}"]


async def test_connect_refuses_missing_bad_and_revoked_tokens(accounts: Accounts) -> None:
    _, token = await _login(accounts)
    connect = Socket("/socket", connect=socket_authenticator(accounts)).connect
    assert await connect({}, Info()) is None
    assert await connect({"token": ""}, Info()) is None
    assert await connect({"token": token + "x"}, Info()) is None
    principal = await accounts.authenticate_token(token)
    assert principal is not None
    await accounts.logout(principal)
    assert await connect({"token": token}, Info()) is None
    assert await connect({}, Info(auth_token=token)) is None


async def test_logout_disconnects_only_that_tokens_sockets(accounts: Accounts) -> None:
    user_id, token = await _login(accounts)
    other_token = (await accounts.login(Credentials(email="sock@example.com", password=PASSWORD))).token
    connect = Socket("/socket", connect=socket_authenticator(accounts)).connect
    first, second = await connect({"token": token}, Info()), await connect({"token": other_token}, Info())
    assert first is not None and second is not None
    recorders = {topic: Recorder() for topic in {*socket_topics(first), *socket_topics(second)}}
    for topic, recorder in recorders.items():
        await accounts.pubsub.subscribe(topic, recorder)
    principal = await accounts.authenticate_token(token)
    assert principal is not None
    await accounts.logout(principal)
    first_token_topic = f"users_socket:{user_id}:{first['jti']}"
    assert recorders[first_token_topic].messages == [Broadcast(first_token_topic, "disconnect", {})]
    assert all(not rec.messages for topic, rec in recorders.items() if topic != first_token_topic)


async def test_deletion_disconnects_all_the_users_sockets(accounts: Accounts) -> None:
    user_id, token = await _login(accounts)
    recorder = Recorder()
    await accounts.pubsub.subscribe(f"users_socket:{user_id}", recorder)
    principal = await accounts.authenticate_token(token)
    assert principal is not None
    await accounts.delete_user(principal, user_id)
    assert recorder.messages == [Broadcast(f"users_socket:{user_id}", "disconnect", {})]


async def test_connect_answers_at_once_from_the_live_view_and_awaits_only_when_it_must(
    accounts: Accounts,
) -> None:
    """A token the in-memory view decides costs no task; one it cannot (user not cached) is awaited."""
    user_id, token = await _login(accounts)
    hook = socket_authenticator(accounts)
    pending = hook({"token": token}, Info())
    assert inspect.isawaitable(pending)  # view not live: the database decides
    assert (await pending) is not None
    await accounts.start()
    try:
        async with asyncio.timeout(10):
            while not accounts.view.live:
                await asyncio.sleep(0.01)
        accounts.view.users.pop(user_id, None)
        pending = hook({"token": token}, Info())
        assert inspect.isawaitable(pending)  # user not cached
        assigns = await pending
        assert assigns is not None and assigns["user_id"] == user_id
        assert hook({"token": token}, Info()) == assigns  # now cached: answered at once
        assert hook({"token": token + "x"}, Info()) is None
    finally:
        await accounts.stop()
