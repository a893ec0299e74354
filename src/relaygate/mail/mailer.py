"""Background delivery: ``send`` returns at once; failures are retried with backoff and logged."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime

from relaygate.mail.adapters import Adapter
from relaygate.mail.message import Email
from relaygate.telemetry.metrics import MAIL_DELIVERIES

log = logging.getLogger("relaygate.mail")


class Mailer:
    """Delivers through an adapter in background tasks, at most ``concurrency`` at a time.

    A message is tried ``attempts`` times, waiting ``backoff * 2**n`` (capped at ``max_backoff``)
    between tries. Nothing here ever raises into the caller (an HTTP request must not fail
    because mail is slow or down).
    """

    def __init__(
        self,
        adapter: Adapter,
        sender: str,
        *,
        attempts: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        concurrency: int = 4,
    ) -> None:
        self.adapter = adapter
        self.sender = sender
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, email: Email) -> asyncio.Task[bool]:
        """Queue ``email``; the task's result says whether it was delivered (tests await it)."""
        email = dataclasses.replace(email, from_=email.from_ or self.sender)
        task = asyncio.create_task(self._deliver(email), name="mail-delivery")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver(self, email: Email) -> bool:
        async with self._slots:
            for attempt in range(1, self.attempts + 1):
                try:
                    await self.adapter.deliver(dataclasses.replace(email, sent_at=datetime.now(UTC)))
                except Exception as exc:
                    # Never the body: it may hold a generated password.
                    reason = type(exc).__name__
                    if attempt == self.attempts:
                        MAIL_DELIVERIES.labels("failed").inc()
                        log.error(
                            "mail %r to %s failed after %d attempts: %s",
                            email.subject,
                            email.to,
                            attempt,
                            reason,
                        )
                        return False
                    MAIL_DELIVERIES.labels("retried").inc()
                    delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                    log.warning(
                        "mail %r to %s failed (attempt %d/%d, %s); retrying in %.1fs",
                        email.subject,
                        email.to,
                        attempt,
                        self.attempts,
                        reason,
                        delay,
                    )
                    await asyncio.sleep(delay)
                else:
                    MAIL_DELIVERIES.labels("sent").inc()
                    log.info("mail %r delivered to %s", email.subject, email.to)
                    return True
        return False

    async def stop(self, grace: float = 5.0) -> None:
        """Give in-flight deliveries ``grace`` seconds, then cancel what is left."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
