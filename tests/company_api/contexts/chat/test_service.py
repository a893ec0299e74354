from __future__ import annotations

import asyncio

import pytest

from company_api.contexts.chat import (
    Chat,
    ConversationNotFound,
    InvalidCursor,
    InvalidInput,
    MemoryRateLimiter,
    RateLimited,
)
from relaygate.db import Database
from relaygate.pubsub import MemoryPubSub
from tests.company_api.contexts.chat.helpers import Collector


async def test_a_conversation_is_created_once_per_pair_in_either_direction(
    chat: Chat, users: list[int]
) -> None:
    alice, bob = users[:2]
    first, created = await chat.start_conversation(alice, bob)
    assert created
    assert (first.sender_id, first.recipient_id, first.status) == (alice, bob, "active")
    again, created_again = await chat.start_conversation(alice, bob)
    reverse, created_reverse = await chat.start_conversation(bob, alice)
    assert not created_again and not created_reverse
    assert again == first and reverse == first
    json = first.to_json()
    assert set(json) == {"id", "sender_id", "recipient_id", "status", "inserted_at", "updated_at"}
    assert json["inserted_at"].endswith("Z")


async def test_concurrent_first_calls_create_exactly_one_conversation(chat: Chat, users: list[int]) -> None:
    alice, bob = users[:2]
    calls = [
        chat.start_conversation(alice, bob) if i % 2 else chat.start_conversation(bob, alice)
        for i in range(6)
    ]
    results = await asyncio.gather(*calls)
    assert sum(created for _, created in results) == 1
    assert len({conversation.id for conversation, _ in results}) == 1


@pytest.mark.parametrize("recipient", [999_999, 0, -1, 2**40, True, "2", None, 1.0])
async def test_a_missing_or_malformed_recipient_is_invalid(
    chat: Chat, users: list[int], recipient: object
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await chat.start_conversation(users[0], recipient)
    assert raised.value.errors == {"recipient_id": ["does not exist"]}


async def test_a_conversation_with_oneself_is_invalid(chat: Chat, users: list[int]) -> None:
    with pytest.raises(InvalidInput) as raised:
        await chat.start_conversation(users[0], users[0])
    assert list(raised.value.errors) == ["recipient_id"]


async def test_only_participants_get_a_conversation(chat: Chat, users: list[int]) -> None:
    alice, bob, carol = users[:3]
    conversation, _ = await chat.start_conversation(alice, bob)
    assert await chat.get_conversation(bob, conversation.id) == conversation
    for stranger, conversation_id in [
        (carol, conversation.id),
        (alice, conversation.id + 1000),
        (alice, "1"),
        (alice, 2**40),
    ]:
        with pytest.raises(ConversationNotFound):
            await chat.get_conversation(stranger, conversation_id)


async def test_conversations_are_listed_most_recently_active_first(chat: Chat, users: list[int]) -> None:
    alice, bob, carol, dave = users
    with_bob, _ = await chat.start_conversation(alice, bob)
    with_carol, _ = await chat.start_conversation(carol, alice)
    with_dave, _ = await chat.start_conversation(alice, dave)
    await chat.start_conversation(bob, carol)  # not alice's
    await chat.send_message(alice, with_bob.id, "bump")

    page = await chat.list_conversations(alice, limit=2)
    assert [c.id for c in page.items] == [with_bob.id, with_dave.id]
    assert page.next is not None
    rest = await chat.list_conversations(alice, limit=2, after=page.next)
    assert [c.id for c in rest.items] == [with_carol.id]
    assert rest.next is None
    assert [c.id for c in (await chat.list_conversations(dave)).items] == [with_dave.id]


async def test_messages_are_stored_and_listed_newest_first(chat: Chat, users: list[int]) -> None:
    alice, bob = users[:2]
    conversation, _ = await chat.start_conversation(alice, bob)
    sent = [await chat.send_message(alice if i % 2 else bob, conversation.id, f"m{i}") for i in range(5)]
    assert sent[1].sender_id == alice and sent[1].content == "m1"
    assert set(sent[0].to_json()) == {"id", "conversation_id", "sender_id", "content", "date", "inserted_at"}

    first = await chat.list_messages(bob, conversation.id, limit=2)
    assert [m.content for m in first.items] == ["m4", "m3"]
    second = await chat.list_messages(bob, conversation.id, limit=2, after=first.next)
    assert [m.content for m in second.items] == ["m2", "m1"]
    last = await chat.list_messages(bob, conversation.id, limit=2, after=second.next)
    assert [m.content for m in last.items] == ["m0"]
    assert last.next is None
    updated = await chat.get_conversation(alice, conversation.id)
    assert updated.last_activity_at == sent[-1].inserted_at


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("", "can't be blank"),
        ("x" * 4001, "should be at most 4000 character(s)"),
        (42, "must be a string"),
        (None, "must be a string"),
        ("a\x00b", "must not contain NUL characters"),
    ],
)
async def test_bad_content_is_invalid_and_stores_nothing(
    chat: Chat, users: list[int], content: object, error: str
) -> None:
    conversation, _ = await chat.start_conversation(users[0], users[1])
    with pytest.raises(InvalidInput) as raised:
        await chat.send_message(users[0], conversation.id, content)
    assert raised.value.errors == {"content": [error]}
    assert (await chat.list_messages(users[0], conversation.id)).items == []
    assert (await chat.get_conversation(users[0], conversation.id)) == conversation


async def test_the_longest_content_and_any_unicode_are_kept_exactly(chat: Chat, users: list[int]) -> None:
    conversation, _ = await chat.start_conversation(users[0], users[1])
    for content in ["é" * 4000, "🙂 مرحبا\n\t'\"; DROP TABLE messages;--"]:
        await chat.send_message(users[0], conversation.id, content)
    stored = (await chat.list_messages(users[1], conversation.id)).items
    assert [m.content for m in reversed(stored)] == ["é" * 4000, "🙂 مرحبا\n\t'\"; DROP TABLE messages;--"]


async def test_one_message_is_read_by_participants_only(chat: Chat, users: list[int]) -> None:
    alice, bob, carol = users[:3]
    conversation, _ = await chat.start_conversation(alice, bob)
    other, _ = await chat.start_conversation(alice, carol)
    message = await chat.send_message(alice, conversation.id, "hi")
    assert await chat.get_message(bob, conversation.id, message.id) == message
    for reader, conversation_id, message_id in [
        (carol, conversation.id, message.id),
        (alice, other.id, message.id),
        (alice, conversation.id, message.id + 1),
        (alice, conversation.id, 2**40),
    ]:
        with pytest.raises(ConversationNotFound):
            await chat.get_message(reader, conversation_id, message_id)


async def test_a_non_participant_can_neither_send_nor_read(chat: Chat, users: list[int]) -> None:
    alice, bob, carol = users[:3]
    conversation, _ = await chat.start_conversation(alice, bob)
    with pytest.raises(ConversationNotFound):
        await chat.send_message(carol, conversation.id, "let me in")
    with pytest.raises(ConversationNotFound):
        await chat.list_messages(carol, conversation.id)
    for conversation_id in [conversation.id + 1000, "1", True, 2**40]:
        with pytest.raises(ConversationNotFound):
            await chat.send_message(alice, conversation_id, "hi")
    assert (await chat.list_messages(alice, conversation.id)).items == []


async def test_pagination_arguments_are_checked(chat: Chat, users: list[int]) -> None:
    conversation, _ = await chat.start_conversation(users[0], users[1])
    for limit in (0, 201):
        with pytest.raises(InvalidInput):
            await chat.list_messages(users[0], conversation.id, limit=limit)
        with pytest.raises(InvalidInput):
            await chat.list_conversations(users[0], limit=limit)
    with pytest.raises(InvalidCursor):
        await chat.list_messages(users[0], conversation.id, after=(1, 2))
    with pytest.raises(InvalidCursor):
        await chat.list_conversations(users[0], after=(1,))


async def test_receive_msg_goes_to_both_participants_except_the_sending_subscriber(
    chat: Chat, pubsub: MemoryPubSub, users: list[int]
) -> None:
    alice, bob = users[:2]
    conversation, _ = await chat.start_conversation(alice, bob)
    sending, other_alice_socket, bob_socket = Collector(), Collector(), Collector()
    await pubsub.subscribe(f"user:{alice}", sending)
    await pubsub.subscribe(f"user:{alice}", other_alice_socket)
    await pubsub.subscribe(f"user:{bob}", bob_socket)
    message = await chat.send_message(alice, conversation.id, "hello", origin=sending)
    assert sending.received == []
    for collector in (other_alice_socket, bob_socket):
        assert [(b.event, b.payload) for b in collector.received] == [
            ("receive_msg", {"message": message.to_json()})
        ]


async def test_the_rate_limit_refuses_without_storing(db: Database, users: list[int]) -> None:
    chat = Chat(db, MemoryPubSub(), MemoryRateLimiter(limit=3, window=10.0))
    conversation, _ = await chat.start_conversation(users[0], users[1])
    for i in range(3):
        await chat.send_message(users[0], conversation.id, f"m{i}")
    with pytest.raises(RateLimited) as raised:
        await chat.send_message(users[0], conversation.id, "one too many")
    assert 0 < raised.value.retry_after <= 10.0
    await chat.send_message(users[1], conversation.id, "the other user is not limited")
    contents = [m.content for m in (await chat.list_messages(users[0], conversation.id)).items]
    assert contents == ["the other user is not limited", "m2", "m1", "m0"]
