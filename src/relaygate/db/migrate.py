"""Alembic migrations run programmatically on the async engine (no alembic.ini needed).

The framework holds the Alembic environment (``migrations/env.py``) and the revision template; an
app holds its revision files (:class:`Migrations`), compared against its models' metadata.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from relaygate.db.engine import Database

ENVIRONMENT = Path(__file__).with_name("migrations")


@dataclass(frozen=True, slots=True)
class Migrations:
    """An app's revision files (``versions``) and the tables they must build (``metadata``)."""

    versions: Path
    metadata: MetaData


def alembic_config(migrations: Migrations, connection: Connection | None = None) -> Config:
    config = Config(stdout=io.StringIO())  # Alembic's progress lines are not for our users
    config.set_main_option("script_location", str(ENVIRONMENT))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(migrations.versions))
    config.attributes["connection"] = connection
    config.attributes["metadata"] = migrations.metadata
    return config


def _pending(connection: Connection, migrations: Migrations) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(migrations))
    current = MigrationContext.configure(connection).get_current_heads()
    return [rev.revision for rev in script.iterate_revisions("heads", current or "base")]


async def upgrade(database: Database, migrations: Migrations) -> None:
    """Apply every pending migration (idempotent)."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(migrations, connection), "head")

    async with database.engine.begin() as connection:
        await connection.run_sync(run)


async def pending(database: Database, migrations: Migrations) -> list[str]:
    """Revisions not applied yet; with a partly migrated database this over-reports, never under."""
    async with database.engine.connect() as connection:
        return await connection.run_sync(_pending, migrations)


async def autogenerate(database: Database, migrations: Migrations, message: str, rev_id: str) -> Path:
    """Write a revision with what the models have and ``database`` (at head) lacks; its path."""

    def run(connection: Connection) -> Path:
        config = alembic_config(migrations, connection)
        with contextlib.redirect_stdout(io.StringIO()):  # "Generating <path> ... done"
            script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        assert script is not None and not isinstance(script, list)
        return Path(script.path)

    async with database.engine.begin() as connection:
        return await connection.run_sync(run)
