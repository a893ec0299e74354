"""Mail adapters: where a message goes when the mailer delivers it."""

from __future__ import annotations

import abc
from collections import deque
from email.message import EmailMessage

import aiosmtplib

from relaygate.mail.message import Email

MAILBOX_SIZE = 1000


class Adapter(abc.ABC):
    @abc.abstractmethod
    async def deliver(self, email: Email) -> None:
        """Deliver one message or raise; the mailer retries."""


class LocalAdapter(Adapter):
    """Keeps delivered mail in memory, newest first (dev/test; read by ``/dev/mailbox``)."""

    def __init__(self, size: int = MAILBOX_SIZE) -> None:
        self._mailbox: deque[Email] = deque(maxlen=size)

    async def deliver(self, email: Email) -> None:
        self._mailbox.appendleft(email)

    def messages(self) -> list[Email]:
        return list(self._mailbox)

    def clear(self) -> None:
        self._mailbox.clear()


def mime(email: Email) -> EmailMessage:
    message = EmailMessage()
    message["From"] = email.from_ or ""
    message["To"] = email.to
    message["Subject"] = email.subject
    message.set_content(email.text_body)
    if email.html_body is not None:
        message.add_alternative(email.html_body, subtype="html")
    return message


class SMTPAdapter(Adapter):
    """Sends through an SMTP server (optionally STARTTLS and login), one connection per message."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    async def deliver(self, email: Email) -> None:
        await aiosmtplib.send(
            mime(email),
            hostname=self.host,
            port=self.port,
            username=self._username,
            password=self._password,
            start_tls=self._starttls,
            use_tls=False,
            timeout=self._timeout,
        )
