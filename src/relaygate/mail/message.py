"""The mail message type."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text_body: str
    html_body: str | None = None
    from_: str | None = None  # the mailer fills in ``RELAYGATE_MAIL_FROM`` when absent
    sent_at: datetime | None = field(default=None, compare=False)

    def __repr__(self) -> str:  # bodies may carry secrets (a generated password): never print them
        return f"Email(to={self.to!r}, subject={self.subject!r})"
