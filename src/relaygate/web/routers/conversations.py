"""``/api/v1/conversations`` and their messages (http-api.md, "Conversations and messages").

Plain FastAPI + problem+json, as the other routers, until the generic resource layer lands. A
message is committed before the ``201``; the chat context then pushes ``receive_msg`` to the other
participant's ``user:<id>`` topic and to every socket of the sender.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from email.utils import format_datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from relaygate.contexts.chat import (
    Chat,
    ConversationNotFound,
    InvalidInput,
    Page,
    RateLimited,
)
from relaygate.web.auth import Caller
from relaygate.web.pagination import CursorCodec, next_link
from relaygate.web.problem_json import Problem
from relaygate.web.responses import JSON

router = APIRouter(prefix="/api/v1", tags=["conversations"])
PRIVATE = {"Cache-Control": "private, no-cache"}
_NOT_FOUND = "No such conversation."


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    recipient_id: int


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    content: str


Limit = Annotated[int, Query(ge=1, le=200)]
After = Annotated[str | None, Query(max_length=200)]


def _chat(request: Request) -> Chat:
    chat: Chat = request.app.state.relaygate.chat
    return chat


def _cursors(request: Request, purpose: str) -> CursorCodec:
    return CursorCodec(request.app.state.relaygate.settings.signing_key(), purpose)


def _etag(representation: dict[str, Any]) -> str:
    """Strong validator of one representation: its bytes decide it."""
    return '"' + hashlib.sha256(orjson.dumps(representation)).hexdigest()[:32] + '"'


def _one(
    representation: dict[str, Any], modified: datetime, status: int = 200, location: str | None = None
) -> JSON:
    headers = {
        **PRIVATE,
        "ETag": _etag(representation),
        "Last-Modified": format_datetime(modified.replace(microsecond=0), usegmt=True),
    }
    if location is not None:
        headers["Location"] = location
    return JSON({"data": representation}, status_code=status, headers=headers)


def _page_response(request: Request, page: Page[Any], codec: CursorCodec, limit: int) -> JSON:
    cursor = None if page.next is None else codec.encode_many(page.next)
    headers = dict(PRIVATE)
    if cursor is not None:
        headers["Link"] = next_link(request.url, cursor, limit)
    return JSON({"data": [item.to_json() for item in page.items], "meta": {"next": cursor}}, headers=headers)


@router.post("/conversations", status_code=201)
async def start_conversation(body: NewConversation, request: Request, caller: Caller) -> JSON:
    """The conversation with ``recipient_id``: ``201`` when created, ``200`` when it existed."""
    try:
        conversation, created = await _chat(request).start_conversation(caller.user_id, body.recipient_id)
    except InvalidInput as exc:
        raise Problem(422, "The conversation cannot be started.", errors=exc.errors) from None
    location = f"/api/v1/conversations/{conversation.id}" if created else None
    return _one(conversation.to_json(), conversation.updated_at, 201 if created else 200, location)


@router.get("/conversations")
async def list_conversations(
    request: Request, caller: Caller, limit: Limit = 50, after: After = None
) -> JSON:
    """The caller's conversations, most recently active first."""
    codec = _cursors(request, "conversations")
    position = None if after is None else codec.decode_many(after, 2)
    page = await _chat(request).list_conversations(caller.user_id, limit=limit, after=position)
    return _page_response(request, page, codec, limit)


@router.get("/conversations/{conversation_id:int}")
async def get_conversation(conversation_id: int, request: Request, caller: Caller) -> JSON:
    try:
        conversation = await _chat(request).get_conversation(caller.user_id, conversation_id)
    except ConversationNotFound:
        raise Problem(404, _NOT_FOUND) from None
    return _one(conversation.to_json(), conversation.updated_at)


@router.get("/conversations/{conversation_id:int}/messages")
async def list_messages(
    conversation_id: int, request: Request, caller: Caller, limit: Limit = 50, after: After = None
) -> JSON:
    """Newest first; ``after`` walks back in time."""
    codec = _cursors(request, f"messages:{conversation_id}")
    position = None if after is None else codec.decode_many(after, 1)
    try:
        page = await _chat(request).list_messages(
            caller.user_id, conversation_id, limit=limit, after=position
        )
    except ConversationNotFound:
        raise Problem(404, _NOT_FOUND) from None
    return _page_response(request, page, codec, limit)


@router.post("/conversations/{conversation_id:int}/messages", status_code=201)
async def send_message(conversation_id: int, body: NewMessage, request: Request, caller: Caller) -> JSON:
    """Store (committed before this returns) and push the message; ``429`` past the rate limit."""
    try:
        message = await _chat(request).send_message(caller.user_id, conversation_id, body.content)
    except RateLimited as exc:
        raise Problem(
            429, "Too many messages; retry later.", headers={"Retry-After": str(math.ceil(exc.retry_after))}
        ) from None
    except ConversationNotFound:
        raise Problem(404, _NOT_FOUND) from None
    except InvalidInput as exc:
        raise Problem(422, "The message cannot be sent.", errors=exc.errors) from None
    location = f"/api/v1/conversations/{conversation_id}/messages/{message.id}"
    return _one(message.to_json(), message.inserted_at, 201, location)


@router.get("/conversations/{conversation_id:int}/messages/{message_id:int}")
async def get_message(conversation_id: int, message_id: int, request: Request, caller: Caller) -> JSON:
    """One message (the ``Location`` of a sent message); participants only."""
    try:
        message = await _chat(request).get_message(caller.user_id, conversation_id, message_id)
    except ConversationNotFound:
        raise Problem(404, "No such message.") from None
    return _one(message.to_json(), message.inserted_at)
