"""Database access: the async engine, sessions, the declarative base and migrations."""

from relaygate.db.base import Base, UTCDateTime, utcnow
from relaygate.db.engine import Database

__all__ = ["Base", "Database", "UTCDateTime", "utcnow"]
