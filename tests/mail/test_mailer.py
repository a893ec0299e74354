"""The mailer against the local outbox and a real SMTP server (aiosmtpd on a free port)."""

from __future__ import annotations

import asyncio
import email
import logging
from collections.abc import AsyncIterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from relaygate.mail import Email, LocalAdapter, Mailer, SMTPAdapter
from relaygate.telemetry.metrics import MAIL_DELIVERIES
from tests.servers import free_port

SECRET_BODY = "your password is hunter2-hunter2"


class Inbox:
    """aiosmtpd handler keeping what it received."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.content))
        )
        return "250 OK"


class SMTPServer:
    def __init__(self, port: int) -> None:
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port)

    async def start(self) -> None:
        await asyncio.to_thread(self.controller.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.controller.stop)


@pytest.fixture
async def smtp_server() -> AsyncIterator[SMTPServer]:
    server = SMTPServer(free_port())
    await server.start()
    yield server
    await server.stop()


def client_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged except by the test's own SMTP server (which logs what it receives)."""
    return "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("mail.log")
    )


def _count(result: str) -> float:
    return MAIL_DELIVERIES.labels(result)._value.get()


def message(to: str = "ada@example.com") -> Email:
    return Email(to=to, subject="Hello", text_body=SECRET_BODY, html_body=f"<p>{SECRET_BODY}</p>")


async def test_local_adapter_keeps_mail_newest_first() -> None:
    adapter = LocalAdapter()
    mailer = Mailer(adapter, "from@relaygate.test")
    assert await mailer.send(message("first@example.com"))
    assert await mailer.send(message("second@example.com"))
    [newest, oldest] = adapter.messages()
    assert (newest.to, oldest.to) == ("second@example.com", "first@example.com")
    assert newest.from_ == "from@relaygate.test" and newest.sent_at is not None
    assert SECRET_BODY not in repr(newest)
    adapter.clear()
    assert adapter.messages() == []


async def test_smtp_delivers_text_and_html(smtp_server: SMTPServer) -> None:
    sent = _count("sent")
    mailer = Mailer(SMTPAdapter("127.0.0.1", smtp_server.controller.port), "from@relaygate.test")
    assert await asyncio.wait_for(mailer.send(message()), 10)
    [(sender, recipients, received)] = smtp_server.inbox.messages
    assert sender == "from@relaygate.test" and recipients == ["ada@example.com"]
    assert received["Subject"] == "Hello" and received["To"] == "ada@example.com"
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in received.walk()}
    assert SECRET_BODY.encode() in parts["text/plain"] and b"<p>" in parts["text/html"]
    assert _count("sent") == sent + 1


async def test_delivery_retries_until_the_server_comes_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = SMTPServer(free_port())
    retried = _count("retried")
    mailer = Mailer(
        SMTPAdapter("127.0.0.1", server.controller.port, timeout=5),
        "f@relaygate.test",
        backoff=0.2,
        max_backoff=0.5,
        attempts=40,
    )
    task = mailer.send(message())
    for _ in range(200):  # wait (bounded) for the first failed attempt
        if _count("retried") > retried:
            break
        await asyncio.sleep(0.02)
    assert _count("retried") > retried and not task.done()
    await server.start()
    try:
        assert await asyncio.wait_for(task, 20)
        assert len(server.inbox.messages) == 1
    finally:
        await server.stop()
    logs = client_logs(caplog)
    assert "retrying" in logs and SECRET_BODY not in logs


async def test_delivery_gives_up_and_counts_the_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    failed = _count("failed")
    mailer = Mailer(
        SMTPAdapter("127.0.0.1", free_port(), timeout=5), "f@relaygate.test", attempts=2, backoff=0.01
    )
    assert await asyncio.wait_for(mailer.send(message()), 10) is False
    assert _count("failed") == failed + 1
    logs = client_logs(caplog)
    assert "failed after 2 attempts" in logs and SECRET_BODY not in logs


async def test_starttls_never_falls_back_to_plain_text(smtp_server: SMTPServer) -> None:
    adapter = SMTPAdapter("127.0.0.1", smtp_server.controller.port, starttls=True, timeout=5)
    mailer = Mailer(adapter, "f@relaygate.test", attempts=1)
    assert await asyncio.wait_for(mailer.send(message()), 10) is False
    assert smtp_server.inbox.messages == []


async def test_send_returns_before_delivery_and_stop_cancels_leftovers() -> None:
    mailer = Mailer(SMTPAdapter("127.0.0.1", free_port(), timeout=5), "f@relaygate.test", backoff=30)
    task = mailer.send(message())
    assert not task.done()
    await mailer.stop(grace=0.2)
    assert task.cancelled()
