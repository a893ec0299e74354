"""``/api/v1/conversations`` and their messages (http-api.md, "Conversations and messages").

Every route is a participant-only resource: a conversation of other users is ``404``, never
``403``, so ids cannot be probed. A message is committed before the ``201``; the chat context then
pushes ``receive_msg`` to the other participant's ``user:<id>`` topic and to the sender's sockets.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from company_api.contexts.chat import (
    MAX_CONTENT,
    Chat,
    ConversationNotFound,
    ConversationRecord,
    InvalidInput,
    MessageRecord,
    Position,
    RateLimited,
)
from company_api.contexts.chat.records import to_micros
from relaygate.web import (
    MAX_ID,
    Call,
    Page,
    Problem,
    Reply,
    Representation,
    ResourceGroup,
    Validators,
    decode_cursor,
    encode_cursor,
)

PREFIX = "/api/v1"


class ConversationView(BaseModel):
    id: int
    sender_id: int
    recipient_id: int
    status: str
    inserted_at: str
    updated_at: str


class MessageView(BaseModel):
    id: int
    conversation_id: int
    sender_id: int
    content: str
    date: str
    inserted_at: str


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    recipient_id: int = Field(ge=1, le=MAX_ID, description="The other participant's user id")


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    content: str = Field(min_length=1, max_length=MAX_CONTENT, pattern=r"^[^\x00]*$", description="The text")


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=50, ge=1, le=200, description="Page size")
    after: str | None = Field(
        default=None, min_length=1, max_length=200, description="Cursor from `meta.next` or the `Link` header"
    )


def _conversation_validators(conversation: ConversationRecord) -> Validators:
    return Validators(f"c{conversation.id}-{to_micros(conversation.updated_at)}", conversation.updated_at)


def _message_validators(message: MessageRecord) -> Validators:
    return Validators(f"m{message.id}", message.inserted_at)  # messages never change


CONVERSATION = Representation(
    schema=ConversationView,
    render=ConversationRecord.to_json,
    validators=_conversation_validators,
    cache="private",
)
MESSAGE = Representation(
    schema=MessageView, render=MessageRecord.to_json, validators=_message_validators, cache="private"
)


def _chat(call: Call) -> Chat:
    chat: Chat = call.node.contexts.chat
    return chat


def _after(call: Call, size: int) -> Position | None:
    query: PageQuery = call.query
    if query.after is None:
        return None
    position = decode_cursor(query.after, call.node.settings.signing_key())
    if not (isinstance(position, list) and len(position) == size and all(type(p) is int for p in position)):
        raise Problem(400, "The cursor is not valid.")
    return tuple(position)


def _cursor(call: Call, position: Position | None) -> str | None:
    return None if position is None else encode_cursor(list(position), call.node.settings.signing_key())


async def _load_conversation(call: Call) -> ConversationRecord | None:
    try:
        return await _chat(call).get_conversation(call.require_principal().user_id, call.params["id"])
    except ConversationNotFound:
        return None


async def _load_message(call: Call) -> MessageRecord | None:
    try:
        return await _chat(call).get_message(
            call.require_principal().user_id, call.params["id"], call.params["message_id"]
        )
    except ConversationNotFound:
        return None


async def _message_rate(call: Call) -> float | None:
    """Counts the message against the sender's limit shared with the channels (step 6, before 404)."""
    try:
        await _chat(call).check_rate(call.require_principal().user_id)
    except RateLimited as exc:
        return exc.retry_after
    return None


def _message_location(message: MessageRecord) -> str:
    return f"{PREFIX}/conversations/{message.conversation_id}/messages/{message.id}"


group = ResourceGroup(prefix=PREFIX, tag="conversations")
conversations = group.resource("/conversations")
conversation = group.resource(
    "/conversations/{id}", ids=("id",), load=_load_conversation, representation=CONVERSATION
)
messages = group.resource("/conversations/{id}/messages", ids=("id",), load=_load_conversation)
message = group.resource(
    "/conversations/{id}/messages/{message_id}",
    ids=("id", "message_id"),
    load=_load_message,
    representation=MESSAGE,
)


@conversations.post(
    auth="user",
    body=NewConversation,
    representation=CONVERSATION,
    status=201,
    location=lambda conversation: f"{PREFIX}/conversations/{conversation.id}",
    other_statuses={200: "The conversation of this pair existed already"},
    summary="Start (or find) the conversation with a user",
    description="One conversation per pair of users: `201` when created, `200` with the same one later.",
)
async def start_conversation(call: Call) -> Reply:
    body: NewConversation = call.body
    try:
        found, created = await _chat(call).start_conversation(
            call.require_principal().user_id, body.recipient_id
        )
    except InvalidInput as exc:
        raise Problem(422, "The conversation cannot be started.", errors=exc.errors) from None
    validators = _conversation_validators(found)
    headers = {"ETag": validators.etag_header, "Cache-Control": CONVERSATION.cache_control}
    if validators.last_modified_header is not None:
        headers["Last-Modified"] = validators.last_modified_header
    if created:
        headers["Location"] = f"{PREFIX}/conversations/{found.id}"
    return Reply(status=201 if created else 200, json={"data": found.to_json()}, headers=headers)


@conversations.get(
    auth="user",
    query=PageQuery,
    page=CONVERSATION,
    summary="The caller's conversations, most recently active first",
    errors={400: "Tampered cursor"},
)
async def list_conversations(call: Call) -> Page:
    query: PageQuery = call.query
    page = await _chat(call).list_conversations(
        call.require_principal().user_id, limit=query.limit, after=_after(call, 2)
    )
    return Page(page.items, _cursor(call, page.next))


@conversation.get(auth="user", summary="One conversation (participants only)")
async def show_conversation(call: Call) -> Any:
    return call.entity


@messages.get(
    auth="user",
    query=PageQuery,
    page=MESSAGE,
    summary="Messages, newest first (`after` walks back in time)",
    errors={400: "Tampered cursor"},
)
async def list_messages(call: Call) -> Page:
    query: PageQuery = call.query
    page = await _chat(call).list_messages(
        call.require_principal().user_id, call.params["id"], limit=query.limit, after=_after(call, 1)
    )
    return Page(page.items, _cursor(call, page.next))


@messages.post(
    auth="user",
    rate_limit=_message_rate,
    body=NewMessage,
    representation=MESSAGE,
    status=201,
    location=_message_location,
    loads_itself=True,
    summary="Send a message (committed before the response, then pushed as `receive_msg`)",
)
async def send_message(call: Call) -> MessageRecord:
    body: NewMessage = call.body
    try:
        return await _chat(call).send_message(
            call.require_principal().user_id, call.params["id"], body.content, rate_checked=True
        )
    except ConversationNotFound:
        raise Problem(404, "No resource at this address.") from None
    except InvalidInput as exc:
        raise Problem(422, "The message cannot be sent.", errors=exc.errors) from None


@message.get(auth="user", summary="One message (participants only)")
async def show_message(call: Call) -> Any:
    return call.entity
