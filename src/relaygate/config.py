"""Settings from ``RELAYGATE_*`` environment variables (the spec's configuration table).

A bad setting raises :class:`ConfigError` with one human line; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import secrets
import socket
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["DEFAULT_DATABASE_URL", "ConfigError", "Settings", "get_settings", "load_settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/relaygate.db"
SECRET_KEY_FILE = Path("var/secret_key")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RELAYGATE_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    env: Literal["dev", "test", "prod"] = "dev"
    """``prod`` refuses to start without a secret key and turns off the dev-only routes (``/dev``, the demo page)."""
    host: str = "127.0.0.1"
    """Listen address."""
    port: int = Field(default=4000, ge=0, le=65535)
    """Listen port."""
    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://user:password@host/db``."""
    redis_url: str | None = None
    """``redis://host:port/db``. Set, the node runs in cluster mode: PubSub, Presence, gateway and rate limits through Redis."""
    secret_key: str | None = Field(default=None, repr=False)
    """Signs access tokens; at least 32 characters (``relaygate gen-secret``). In dev and test generated once into ``var/secret_key``."""
    node_name: str | None = None
    """This node's name in the cluster, unique per node; default ``<hostname>:<port>``."""
    token_ttl: int = Field(default=86400, ge=60)
    """Access token lifetime in seconds."""
    check_origin: CommaList | None = None
    """Comma list of allowed WebSocket origins (``https://example.com``, ``//*.example.com``; ``*`` = any). Default: any in dev and test, the listen host in prod."""
    cors_origins: CommaList = Field(default_factory=list)
    """Comma list of origins allowed by CORS on the HTTP API; empty = no CORS headers."""
    mail_adapter: Literal["local", "smtp"] = "local"
    """``local`` keeps mail in an in-process outbox (``GET /dev/mailbox``); ``smtp`` sends it through the SMTP settings."""
    smtp_host: str = "localhost"
    """SMTP server host (``mail_adapter=smtp``)."""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    """SMTP server port."""
    smtp_username: str | None = None
    """SMTP login user, if the server needs one."""
    smtp_password: str | None = Field(default=None, repr=False)
    """SMTP login password."""
    smtp_starttls: bool = False
    """Upgrade the SMTP connection with STARTTLS."""
    mail_from: str = "no-reply@relaygate.local"
    """Sender address of outgoing mail."""
    longpoll: bool = False
    """Also serve the long-poll transport at ``/socket/longpoll`` (phoenix.js ``LongPoll``)."""
    log_level: str = "info"
    """Python logging level of the node's logs (``debug``, ``info``, ``warning``, ...)."""
    gateway_module: str | None = None
    """``package.module:attr``: a ``Service`` or ``register(gateway)`` giving local gateway functions."""
    gateway_debug_errors: bool = False
    """Show the exception of a failing gateway function to the caller instead of a generic text."""
    presence_diff_window: float = Field(default=0.02, ge=0, le=5)
    """Seconds during which a topic's presence changes are coalesced into one ``presence_diff``."""

    @field_validator("check_origin", "cors_origins", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        if url.drivername not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError("use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:  # RELAYGATE_REDIS_URL= (empty) means one-node mode, like unset
            return None
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use redis://host:port/db")
        return value or None

    @model_validator(mode="after")
    def _prod_needs_secret(self) -> Settings:
        if self.env == "prod" and not self.secret_key:
            raise ValueError("RELAYGATE_SECRET_KEY is required when RELAYGATE_ENV=prod")
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise ValueError("RELAYGATE_SECRET_KEY must be at least 32 characters")
        return self

    @property
    def cluster(self) -> bool:
        return self.redis_url is not None

    @property
    def dev_routes(self) -> bool:
        return self.env != "prod"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def node(self) -> str:
        return self.node_name or f"{socket.gethostname()}:{self.port}"

    @property
    def allowed_origins(self) -> list[str] | None:
        """Socket origin allow-list; ``None`` accepts any origin (dev and test default)."""
        if self.check_origin is not None:
            return None if self.check_origin == ["*"] else self.check_origin
        return None if self.env != "prod" else [f"//{self.host}"]

    def signing_key(self) -> str:
        """The token signing key; in dev/test generated once into ``var/secret_key``."""
        if self.secret_key:
            return self.secret_key
        if SECRET_KEY_FILE.exists():
            return SECRET_KEY_FILE.read_text().strip()
        SECRET_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        SECRET_KEY_FILE.write_text(key)
        SECRET_KEY_FILE.chmod(0o600)
        return key


def load_settings(cls: type[Settings] = Settings, **overrides: object) -> Settings:
    """Read the environment into ``cls`` (an app's subclass); raise :class:`ConfigError` with one
    line naming what is wrong."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        name = f"RELAYGATE_{where.upper()}: " if where else ""
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name}{message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
