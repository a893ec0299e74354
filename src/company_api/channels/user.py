"""``user:<id>``: a user's private inbox; ``send_msg`` stores a message and relays it live.

The message is committed before the ``ok`` reply (an acknowledged message is never lost); the
chat context then pushes ``receive_msg`` to the other participant and to the sender's other
sockets, skipping this socket, which has the message in its reply.
"""

from __future__ import annotations

from typing import Any

from company_api.channels.replies import invalid, rate_limited, unknown_event
from company_api.contexts.chat import (
    Chat,
    ConversationNotFound,
    InvalidInput,
    RateLimited,
    content_errors,
    user_topic,
)
from relaygate.channels import Channel, ChannelSocket, Reply

_NOT_FOUND = Reply.error({"reason": "not_found"})


def _send_msg_errors(payload: Any) -> dict[str, list[str]]:
    if not isinstance(payload, dict):
        return {"payload": ["must be an object"]}
    errors: dict[str, list[str]] = {}
    conv = payload.get("conv")
    if not isinstance(conv, int) or isinstance(conv, bool):
        errors["conv"] = ["must be an integer"]
    message = content_errors(payload.get("message"))
    if message:
        errors["message"] = message
    unknown = sorted(set(payload) - {"conv", "message"})
    for field in unknown:
        errors[field] = ["is not allowed"]
    return errors


class UserChannel(Channel):
    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        if topic != user_topic(socket.assigns["user_id"]):
            return Reply.error({"reason": "unauthorized"})
        return Reply.ok()

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        if event != "send_msg":
            return unknown_event(event)
        errors = _send_msg_errors(payload)
        if errors:
            return invalid(errors)
        try:
            message = await self.chat.send_message(
                socket.assigns["user_id"], payload["conv"], payload["message"], origin=socket
            )
        except ConversationNotFound:
            return _NOT_FOUND
        except RateLimited as limited:
            return rate_limited(limited.retry_after)
        except InvalidInput as bad:  # a rule the payload check above does not know
            return invalid({"message" if field == "content" else field: e for field, e in bad.errors.items()})
        return Reply.ok({"message": message.to_json()})
