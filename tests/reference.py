"""The reference app the suite runs against: its migrations and its complete metadata."""

from __future__ import annotations

from company_api.app import app
from relaygate.db.migrate import Migrations

migrations = app.schema()
assert migrations is not None
MIGRATIONS: Migrations = migrations
metadata = app.metadata
