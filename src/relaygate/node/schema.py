"""Apply an app's migrations to its database (``relaygate migrate``, and ``serve`` on SQLite)."""

from __future__ import annotations

from relaygate.config import ConfigError
from relaygate.db import Database
from relaygate.db.migrate import pending, upgrade
from relaygate.node.app import App


async def migrate(app: App, database_url: str) -> list[str]:
    """Bring the database to the app's head revision; the revisions that were pending."""
    try:
        migrations = app.schema()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if migrations is None:
        return []
    database = Database(database_url)
    try:
        todo = await pending(database, migrations)
        await upgrade(database, migrations)
        return todo
    finally:
        await database.dispose()
