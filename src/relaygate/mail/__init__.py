"""Mail: a message type, adapters (local outbox, SMTP) and a background mailer with retries."""

from __future__ import annotations

from relaygate.config import Settings
from relaygate.mail.adapters import Adapter, LocalAdapter, SMTPAdapter
from relaygate.mail.mailer import Mailer
from relaygate.mail.message import Email


def adapter_from_settings(settings: Settings) -> Adapter:
    if settings.mail_adapter == "smtp":
        return SMTPAdapter(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    return LocalAdapter()


__all__ = ["Adapter", "Email", "LocalAdapter", "Mailer", "SMTPAdapter", "adapter_from_settings"]
