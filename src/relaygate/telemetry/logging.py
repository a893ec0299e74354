"""Structured logging: JSON lines in prod, readable lines elsewhere, request_id/user_id attached."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("user_id", default=None)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
"""Record attributes that are not extra fields (uvicorn's ``color_message`` repeats the message)."""
# Access tokens in a line: a JWT anywhere (e.g. a library logging the upgrade request line with
# its ``?token=`` query), or a token/password-looking query or form field.
_SECRETS = re.compile(r"eyJ[\w-]*\.eyJ[\w-]*\.[\w-]*|(?<=[?&]token=)[^&\s\"']+|(?<=[?&]authToken=)[^&\s\"']+")


def redact(line: str) -> str:
    """``line`` with anything shaped like a credential replaced: logs never carry secrets, even
    from third-party loggers at debug level."""
    return _SECRETS.sub("[redacted]", line)


class ContextFilter(logging.Filter):
    """Copies the request's ids onto every record logged while it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.user_id = user_id_var.get()
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and value is not None
        )
        return redact(f"{line} {extras}" if extras else line)


# Libraries whose output below these levels holds request data (SQL statements with their
# parameters, WebSocket frames and handshake lines with tokens): never logged, even at debug.
PAYLOAD_LOGGERS = {
    "aiosqlite": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,
    "asyncpg": logging.WARNING,
    "websockets": logging.WARNING,
    "redis": logging.WARNING,
    "uvicorn.error": logging.INFO,
}


def configure_logging(*, json: bool, level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JSONFormatter() if json else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # per-revision and plugin set-up lines
    for name, floor in PAYLOAD_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
