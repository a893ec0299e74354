from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from relaygate.db import Database
from relaygate.db.migrate import pending, upgrade
from tests.reference import MIGRATIONS, metadata


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_migrations_build_exactly_the_models_schema(db: Database) -> None:
    assert await pending(db, MIGRATIONS) == []
    async with db.engine.connect() as connection:
        differences = await connection.run_sync(_diff)
    assert differences == []


async def test_upgrade_is_idempotent(db: Database) -> None:
    await upgrade(db, MIGRATIONS)
    assert await pending(db, MIGRATIONS) == []
