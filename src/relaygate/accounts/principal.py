"""Who is calling: the identity the HTTP layer, sockets and the gateway authorize against."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ROLES = ("user", "admin")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a verified access token; ``role`` is the user's current role."""

    user_id: int
    role: str  # "user" | "admin"
    jti: str
    expires_at: int  # unix seconds

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the rest of the application sees it (never with the password hash)."""

    id: int
    name: str
    subname: str
    email: str
    job: str
    role: str
    inserted_at: datetime
    updated_at: datetime

    @property
    def created_us(self) -> int:
        """Creation time in whole microseconds since the epoch (exact, no float rounding)."""
        return (self.inserted_at - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Session:
    """A successful login: the user, the access token and its expiry (unix seconds)."""

    user: Account
    token: str = field(repr=False)  # a bearer credential: never in a log line
    expire: int
