from __future__ import annotations

from typing import Any

import pytest

from relaygate.accounts import Credentials, NewUser
from relaygate.channels.testing import ChannelClient, ConnectRefused, JoinRefused
from relaygate.config import Settings
from relaygate.node import Node
from tests.company_api.channels.conftest import Connect


async def test_only_the_user_joins_their_topic(connect: Connect, users: list[int]) -> None:
    client = await connect(users[0])
    await client.join(f"user:{users[0]}")
    for topic in (f"user:{users[1]}", "user:", "user:abc", f"user:{users[0]}0"):
        with pytest.raises(JoinRefused) as refused:
            await client.join(topic)
        assert refused.value.response == {"reason": "unauthorized"}


async def test_send_msg_is_stored_acknowledged_and_relayed(
    node: Node, connect: Connect, users: list[int]
) -> None:
    alice, bob, _ = users
    conversation, _ = await node.contexts.chat.start_conversation(alice, bob)
    alice_phone = await (await connect(alice)).join(f"user:{alice}")
    alice_laptop = await (await connect(alice)).join(f"user:{alice}")
    bob_inbox = await (await connect(bob)).join(f"user:{bob}")

    ref = await alice_phone.push("send_msg", {"conv": conversation.id, "message": "hi bob"})
    reply = await alice_phone.assert_reply(ref)
    message = reply["message"]
    assert (message["conversation_id"], message["sender_id"], message["content"]) == (
        conversation.id,
        alice,
        "hi bob",
    )
    assert await bob_inbox.assert_push("receive_msg") == {"message": message}
    assert await alice_laptop.assert_push("receive_msg") == {"message": message}
    await alice_phone.refute_push("receive_msg")
    history = await node.contexts.chat.list_messages(bob, conversation.id)
    assert [m.to_json() for m in history.items] == [message]


async def test_a_non_participant_gets_not_found(node: Node, connect: Connect, users: list[int]) -> None:
    alice, bob, carol = users
    conversation, _ = await node.contexts.chat.start_conversation(alice, bob)
    carol_inbox = await (await connect(carol)).join(f"user:{carol}")
    bob_inbox = await (await connect(bob)).join(f"user:{bob}")
    for conv in (conversation.id, conversation.id + 1000, 2**40):
        ref = await carol_inbox.push("send_msg", {"conv": conv, "message": "sneaky"})
        assert await carol_inbox.assert_reply(ref, "error") == {"reason": "not_found"}
    await bob_inbox.refute_push("receive_msg")
    assert (await node.contexts.chat.list_messages(bob, conversation.id)).items == []


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"message": "hi"}, {"conv": ["must be an integer"]}),
        ({"conv": "1", "message": "hi"}, {"conv": ["must be an integer"]}),
        ({"conv": True, "message": "hi"}, {"conv": ["must be an integer"]}),
        ({"conv": 1}, {"message": ["must be a string"]}),
        ({"conv": 1, "message": ""}, {"message": ["can't be blank"]}),
        ({"conv": 1, "message": "x" * 4001}, {"message": ["should be at most 4000 character(s)"]}),
        ({"conv": 1, "message": "hi", "to": 2}, {"to": ["is not allowed"]}),
        ([1, "hi"], {"payload": ["must be an object"]}),
    ],
)
async def test_bad_payloads_are_invalid_and_the_channel_stays_joined(
    node: Node, connect: Connect, users: list[int], payload: Any, errors: dict[str, list[str]]
) -> None:
    conversation, _ = await node.contexts.chat.start_conversation(users[0], users[1])
    inbox = await (await connect(users[0])).join(f"user:{users[0]}")
    ref = await inbox.push("send_msg", payload)
    assert await inbox.assert_reply(ref, "error") == {"reason": "invalid", "errors": errors}
    ref = await inbox.push("send_msg", {"conv": conversation.id, "message": "still here"})
    assert (await inbox.assert_reply(ref))["message"]["content"] == "still here"
    ref = await inbox.push("shout", {})
    assert (await inbox.assert_reply(ref, "error"))["reason"] == "invalid"


async def test_the_rate_limit_is_reported_with_retry_after(
    settings: Settings, db: object, users: list[int]
) -> None:
    node = Node(settings.model_copy(update={"chat_rate_limit": 2}))
    await node.start()
    try:
        conversation, _ = await node.contexts.chat.start_conversation(users[0], users[1])
        client = await ChannelClient.connect(
            node.endpoint, node.endpoint.sockets[0], assigns={"user_id": users[0], "name": "A", "jti": "j"}
        )
        inbox = await client.join(f"user:{users[0]}")
        for _ in range(2):
            await inbox.assert_reply(await inbox.push("send_msg", {"conv": conversation.id, "message": "m"}))
        reply = await inbox.assert_reply(
            await inbox.push("send_msg", {"conv": conversation.id, "message": "m"}), "error"
        )
        assert reply["reason"] == "rate_limited"
        assert 0 < reply["retry_after_ms"] <= 10_000
        assert len((await node.contexts.chat.list_messages(users[0], conversation.id)).items) == 2
        await client.close()
    finally:
        await node.stop()


async def test_the_socket_needs_a_valid_token(node: Node) -> None:
    socket = node.endpoint.sockets[0]
    with pytest.raises(ConnectRefused):
        await ChannelClient.connect(node.endpoint, socket, {})
    with pytest.raises(ConnectRefused):
        await ChannelClient.connect(node.endpoint, socket, {"token": "not-a-token"})
    password = "correct horse battery"
    account = await node.accounts.register(
        NewUser(name="Ada", subname="Lovelace", email="ada@example.com", job="Engineer", password=password)
    )
    session = await node.accounts.login(Credentials(email="ada@example.com", password=password))
    client = await ChannelClient.connect(node.endpoint, socket, {"token": session.token})
    assert client.session.socket_id == f"users_socket:{account.id}"
    await client.join(f"user:{account.id}")
    await client.close()
