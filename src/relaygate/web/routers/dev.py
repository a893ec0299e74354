"""Development routes (only mounted when ``RELAYGATE_ENV`` is dev or test)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from relaygate.mail import LocalAdapter
from relaygate.web.responses import JSON
from relaygate.web.routers.users import iso

router = APIRouter(prefix="/dev", tags=["dev"])


def _local(request: Request) -> LocalAdapter | None:
    adapter = request.app.state.relaygate.mailer.adapter
    return adapter if isinstance(adapter, LocalAdapter) else None


@router.get("/mailbox")
async def mailbox(request: Request) -> JSON:
    """What the local mail adapter delivered, newest first (empty with another adapter)."""
    local = _local(request)
    messages = local.messages() if local is not None else []
    return JSON(
        {
            "data": [
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
        },
        headers={"Cache-Control": "no-store"},
    )


@router.delete("/mailbox", status_code=204)
async def empty_mailbox(request: Request) -> Response:
    local = _local(request)
    if local is not None:
        local.clear()
    return Response(status_code=204)
