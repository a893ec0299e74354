"""Development routes (installed only when ``RELAYGATE_ENV`` is dev or test)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from relaygate.mail import LocalAdapter
from relaygate.web.resources import Call, Reply, ResourceGroup
from relaygate.web.routers.users import iso


class MailView(BaseModel):
    to: str
    from_: str | None = Field(alias="from")
    subject: str
    text_body: str
    html_body: str | None
    sent_at: datetime | None


class MailboxView(BaseModel):
    data: list[MailView]


group = ResourceGroup(prefix="/dev", tag="dev")
mailbox = group.resource("/mailbox")


def _local(call: Call) -> LocalAdapter | None:
    adapter = call.node.mailer.adapter
    return adapter if isinstance(adapter, LocalAdapter) else None


@mailbox.get(response_schema=MailboxView, summary="Delivered mail, newest first")
async def show_mailbox(call: Call) -> Reply:
    """What the local mail adapter delivered (empty with another adapter)."""
    local = _local(call)
    messages = local.messages() if local is not None else []
    data = [
        {
            "to": email.to,
            "from": email.from_,
            "subject": email.subject,
            "text_body": email.text_body,
            "html_body": email.html_body,
            "sent_at": iso(email.sent_at) if email.sent_at else None,
        }
        for email in messages
    ]
    return Reply(json={"data": data}, headers={"Cache-Control": "no-store"})


@mailbox.delete(summary="Empty the mailbox")
async def empty_mailbox(call: Call) -> None:
    local = _local(call)
    if local is not None:
        local.clear()
