"""``room:<name>``: public rooms with presence (one key per user, one meta per device) and typing.

Room messages are not stored; they count against the sender's message rate limit all the same.
"""

from __future__ import annotations

import re
import time
from typing import Any

from company_api.channels.replies import invalid, rate_limited, unknown_event
from company_api.contexts.chat import Chat, RateLimited, content_errors, isotime
from relaygate.channels import Channel, ChannelSocket, Reply
from relaygate.db import utcnow

ROOM_TOPIC = re.compile(r"room:[A-Za-z0-9_-]{1,64}")
MAX_DEVICE = 100
MAX_STATUS = 32
_AFTER_JOIN = "after_join"


def _optional_text(payload: Any, field: str, limit: int) -> tuple[str | None, list[str]]:
    value = payload.get(field) if isinstance(payload, dict) else None
    if value is None:
        return None, []
    if not isinstance(value, str):
        return None, ["must be a string"]
    if len(value) > limit:
        return None, [f"should be at most {limit} character(s)"]
    return value, []


class RoomChannel(Channel):
    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        if not ROOM_TOPIC.fullmatch(topic):
            return invalid({"topic": ["must be room:<name>, name 1..64 of A-Z a-z 0-9 _ -"]})
        device, errors = _optional_text(payload, "device", MAX_DEVICE)
        if errors:
            return invalid({"device": errors})
        socket.assigns["presence"] = {
            "online_at": int(time.time()),
            "name": socket.assigns.get("name"),
            "device": device,
        }
        socket.send_info(_AFTER_JOIN)  # runs once the join reply is out
        return Reply.ok()

    async def handle_info(self, message: Any, socket: ChannelSocket) -> None:
        if message != _AFTER_JOIN:
            super().handle_info(message, socket)
            return None
        await socket.track(str(socket.assigns["user_id"]), socket.assigns["presence"])
        await socket.push("presence_state", socket.endpoint.require_presence().state(socket.topic))
        return None

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        if event == "message:new":
            return await self._message(payload, socket)
        if event == "typing":
            await socket.broadcast_from("typing", {"user_id": socket.assigns["user_id"]})
            return Reply.ok()
        if event == "presence:update":
            return await self._status(payload, socket)
        return unknown_event(event)

    async def _message(self, payload: Any, socket: ChannelSocket) -> Reply:
        body = payload.get("body") if isinstance(payload, dict) else None
        errors = content_errors(body)
        if errors:
            return invalid({"body": errors})
        user_id = socket.assigns["user_id"]
        try:
            await self.chat.check_rate(user_id)
        except RateLimited as limited:
            return rate_limited(limited.retry_after)
        await socket.broadcast(
            "message:new",
            {
                "user_id": user_id,
                "name": socket.assigns.get("name"),
                "body": body,
                "inserted_at": isotime(utcnow()),
            },
        )
        return Reply.ok()

    async def _status(self, payload: Any, socket: ChannelSocket) -> Reply:
        if not isinstance(payload, dict) or "status" not in payload:
            return invalid({"status": ["can't be blank"]})
        status, errors = _optional_text(payload, "status", MAX_STATUS)
        if errors or status is None:
            return invalid({"status": errors or ["must be a string"]})
        meta = {**socket.assigns["presence"], "status": status}
        socket.assigns["presence"] = meta
        await socket.update_presence(str(socket.assigns["user_id"]), meta)
        return Reply.ok()
