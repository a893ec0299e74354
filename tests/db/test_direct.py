"""relaygate.db.direct on real SQLite and PostgreSQL: same rows as the ORM, atomic units, locks."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import select

from company_api.contexts.catalog.models import Product
from relaygate.db import Database, utcnow
from relaygate.db.direct import SQL, DatabaseUnavailable, SQLiteDirect, Tx


def test_placeholders_become_numbered_for_postgresql() -> None:
    sql = SQL("SELECT a FROM t WHERE b = ? AND (c = ? OR d = ?)")
    assert sql.sqlite == "SELECT a FROM t WHERE b = ? AND (c = ? OR d = ?)"
    assert sql.postgresql == "SELECT a FROM t WHERE b = $1 AND (c = $2 OR d = $3)"


_INSERT = SQL(
    "INSERT INTO products (name, description, price_cents, tags, revision, inserted_at, updated_at) "
    "VALUES (?, '', ?, '[]', 1, ?, ?) RETURNING id"
)
_NAME = SQL("SELECT name, updated_at FROM products WHERE id = ?")


async def test_times_written_directly_read_back_the_same_through_the_orm(db: Database) -> None:
    direct = db.direct
    moment = utcnow().replace(microsecond=0) + timedelta(microseconds=7)  # SQLite keeps 6 digits

    async def insert(tx: Tx) -> int:
        row = await tx.one(_INSERT, "direct", 5, direct.timestamp(moment), direct.timestamp(moment))
        assert row is not None
        return int(row[0])

    product_id = await direct.run(insert, write=True)
    async with db.session() as session:
        product = (await session.scalars(select(Product).where(Product.id == product_id))).one()
    assert (product.name, product.updated_at) == ("direct", moment)
    row = await direct.fetch_one(_NAME, product_id)
    assert row is not None and direct.moment(row[1]) == moment
    assert await direct.fetch_one(_NAME, product_id + 1) is None


async def test_a_unit_that_raises_leaves_nothing(db: Database) -> None:
    direct = db.direct

    async def half(tx: Tx) -> None:
        await tx.one(_INSERT, "half", 1, direct.timestamp(utcnow()), direct.timestamp(utcnow()))
        raise LookupError("changed my mind")

    with pytest.raises(LookupError):
        await direct.run(half, write=True)
    async with db.session() as session:
        assert (await session.scalars(select(Product))).all() == []


async def test_sqlite_waits_for_a_lock_in_its_worker_thread_not_on_the_loop(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = tmp_path_factory.mktemp("direct") / "locked.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    direct = SQLiteDirect(str(path))
    insert = SQL("INSERT INTO t (v) VALUES (?) RETURNING id")
    setup.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    running = asyncio.create_task(ticker())
    unit = asyncio.create_task(direct.run(lambda tx: tx.one(insert, "x"), write=True))
    await asyncio.sleep(0.2)
    assert not unit.done() and ticks > 5  # waiting, and the loop keeps running meanwhile
    setup.execute("COMMIT")
    assert await asyncio.wait_for(unit, 5) == (1,)
    assert await direct.fetch_one(SQL("SELECT v FROM t WHERE id = ?"), 1) == ("x",)
    running.cancel()
    await direct.close()
    setup.close()


async def test_postgresql_away_is_unavailable_not_a_crash() -> None:
    from tests.servers import free_port

    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing")
    with pytest.raises(DatabaseUnavailable):
        await database.direct.fetch_one(SQL("SELECT 1"))
    await database.dispose()
