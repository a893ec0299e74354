"""The last warnings and errors of this node, for the dashboard: a bounded ring fed by logging.

Records keep the logger, level, the formatted message (cut short), the exception's type (never its
traceback or arguments) and the request/user ids. Log lines never carry tokens, passwords or message
bodies (the logging rules), so neither does this ring.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Final

from relaygate.telemetry.logging import request_id_var, user_id_var

MAX_MESSAGE: Final = 300


class RecentErrors(logging.Handler):
    """Keeps the last ``size`` records at WARNING or above; an append per record, nothing else."""

    def __init__(self, size: int = 50) -> None:
        super().__init__(logging.WARNING)
        self.records: deque[dict[str, Any]] = deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        entry: dict[str, Any] = {
            "at": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        for name, var in (("request_id", request_id_var), ("user_id", user_id_var)):
            value = getattr(record, name, None) or var.get()
            if value is not None:
                entry[name] = value
        self.records.append(entry)

    def latest(self, count: int = 20) -> list[dict[str, Any]]:
        """The newest ``count`` entries, newest first."""
        return list(reversed(self.records))[:count]
