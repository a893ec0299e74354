"""Database access: the async engine, sessions, the declarative base and migrations."""

from relaygate.db.base import Base, UTCDateTime, utcnow
from relaygate.db.direct import SQL, Tx
from relaygate.db.engine import Database

__all__ = ["SQL", "Base", "Database", "Tx", "UTCDateTime", "utcnow"]
