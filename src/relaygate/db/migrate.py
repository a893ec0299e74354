"""Alembic migrations run programmatically on the async engine (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from relaygate.db.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _pending(connection: Connection) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    current = set(MigrationContext.configure(connection).get_current_heads())
    return [rev.revision for rev in script.walk_revisions() if rev.revision not in current]


async def upgrade(database: Database) -> None:
    """Apply every pending migration (idempotent)."""
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def pending(database: Database) -> list[str]:
    """Revisions not applied yet; with a partly migrated database this over-reports, never under."""
    async with database.engine.connect() as connection:
        return await connection.run_sync(_pending)
