"""Hot-path statements straight on the driver: fixed SQL, no ORM, no per-statement thread hop.

The ORM (``Database.session``) stays the way to write most queries. A few requests run often
enough that SQLAlchemy's per-statement work (compile-cache lookup, result processing, unit of
work) and aiosqlite's thread hop per call dominate them; they use this module instead:

- **SQLite**: statements run on the event loop thread on a connection whose busy timeout is
  zero, so a statement either proceeds at once or fails at once with "database is locked"; only
  then does the whole unit run again in one worker thread that may wait for the lock. A unit
  never suspends in between, so on the loop it is atomic with respect to other requests. WAL
  checkpoints, which fsync, run in the worker thread, never on the loop.
- **PostgreSQL**: an asyncpg pool of its own; asyncpg prepares each statement once per
  connection and reuses it.

A unit of work is an ``async`` function of a :class:`Tx`; on SQLite it is driven to completion
without an event loop (its awaits never suspend), which is what lets it run inline or in the
worker thread alike. It must await nothing but its ``Tx``.

Connection-level failures (server gone, restarting, file locked past the timeout) are raised as
:class:`DatabaseUnavailable`, a ``ConnectionError``: the web layer answers those ``503``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

log = logging.getLogger("relaygate.db")

T = TypeVar("T")
Row = tuple[Any, ...]

_PLACEHOLDER = re.compile(r"\?")
CHECKPOINT_EVERY = 500
"""Inline SQLite commits between two WAL checkpoints (run in the worker thread)."""
BUSY_TIMEOUT_MS = 5000


class DatabaseUnavailable(ConnectionError):
    """The database cannot be reached or locked right now (answered ``503``, never ``500``)."""


class SQL:
    """One statement written with ``?`` placeholders, kept in each dialect's form."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, text: str) -> None:
        self.sqlite = text
        counter = iter(range(1, text.count("?") + 1))
        self.postgresql = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", text)


class Tx(Protocol):
    """What a unit of work may do: run statements in its one transaction."""

    async def one(self, sql: SQL, *args: Any) -> Row | None: ...

    async def all(self, sql: SQL, *args: Any) -> list[Row]: ...


Unit = Callable[[Tx], Coroutine[Any, Any, T]]


def _drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a SQLite unit of work awaited something other than its Tx")


class _SQLiteTx:
    __slots__ = ("connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    async def one(self, sql: SQL, *args: Any) -> Row | None:
        rows = self.connection.execute(sql.sqlite, args).fetchall()
        return tuple(rows[0]) if rows else None

    async def all(self, sql: SQL, *args: Any) -> list[Row]:
        return [tuple(row) for row in self.connection.execute(sql.sqlite, args).fetchall()]


def _locked(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SQLiteDirect:
    """Inline on the loop (busy timeout 0), falling back to one worker thread that may wait."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._inline: sqlite3.Connection | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="relaygate-sqlite")
        self._worker_connection = threading.local()
        self._commits = 0
        self.healthy = True

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA synchronous=NORMAL")
        # A commit on the loop must not checkpoint (fsync): the worker thread does it.
        connection.execute(f"PRAGMA wal_autocheckpoint={0 if busy_timeout_ms == 0 else 1000}")
        return connection

    def _inline_connection(self) -> sqlite3.Connection:
        if self._inline is None:
            self._inline = self._connect(0)
        return self._inline

    def _thread_connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._worker_connection, "value", None)
        if connection is None:
            connection = self._worker_connection.value = self._connect(BUSY_TIMEOUT_MS)
        return connection

    @staticmethod
    def _transaction(connection: sqlite3.Connection, unit: Unit[T], write: bool) -> T:
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = _drive(unit(_SQLiteTx(connection)))
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def _in_thread(self, unit: Unit[T], write: bool) -> T:
        try:
            return self._transaction(self._thread_connection(), unit, write)
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                self.healthy = False
                raise DatabaseUnavailable(f"SQLite stayed locked: {exc}") from exc
            raise

    async def run(self, unit: Unit[T], *, write: bool) -> T:
        connection = self._inline_connection()
        try:
            result = self._transaction(connection, unit, write)
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._worker, self._in_thread, unit, write)
        self.healthy = True
        if write:
            self._commits += 1
            if self._commits % CHECKPOINT_EVERY == 0:
                asyncio.get_running_loop().run_in_executor(self._worker, self._checkpoint)
        return result

    def _checkpoint(self) -> None:
        try:
            self._thread_connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.warning("WAL checkpoint failed", exc_info=True)

    async def fetch_one(self, sql: SQL, *args: Any) -> Row | None:
        try:
            rows = self._inline_connection().execute(sql.sqlite, args).fetchall()
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise

            async def read(tx: Tx) -> Row | None:
                return await tx.one(sql, *args)

            return await self.run(read, write=False)
        self.healthy = True
        return tuple(rows[0]) if rows else None

    @staticmethod
    def timestamp(moment: datetime) -> str:
        """A UTC time as SQLAlchemy stores it on SQLite (text that sorts in time order)."""
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")

    @staticmethod
    def moment(value: Any) -> datetime:
        # the offset in the text: ``replace(tzinfo=...)`` costs several times the parse
        return datetime.fromisoformat(value + "+00:00")

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None

        def close_worker() -> None:
            connection = getattr(self._worker_connection, "value", None)
            if connection is not None:
                connection.close()
                self._worker_connection.value = None

        await asyncio.get_running_loop().run_in_executor(self._worker, close_worker)


class _PostgresTx:
    __slots__ = ("connection",)

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def one(self, sql: SQL, *args: Any) -> Row | None:
        row = await self.connection.fetchrow(sql.postgresql, *args)
        return None if row is None else tuple(row)

    async def all(self, sql: SQL, *args: Any) -> list[Row]:
        return [tuple(row) for row in await self.connection.fetch(sql.postgresql, *args)]


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    import asyncpg  # type: ignore[import-untyped]

    return (
        OSError,
        asyncio.TimeoutError,
        asyncpg.InterfaceError,
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.OperatorInterventionError,
        asyncpg.exceptions.InsufficientResourcesError,
    )


class _Pool:
    """A minimal asyncpg connection pool: an idle list and a queue of waiters, no task per acquire
    (asyncpg's own pool wraps each acquire in a task and resets each connection on release, which
    cost more CPU than the query). Connections that failed are closed, never reused."""

    def __init__(self, dsn: str, max_size: int) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self.size = 0
        self.idle: list[Any] = []
        self.waiters: deque[asyncio.Future[Any]] = deque()

    async def acquire(self) -> Any:
        while self.idle:
            connection = self.idle.pop()
            if not connection.is_closed():
                return connection
            self.size -= 1
        if self.size < self.max_size:
            import asyncpg

            self.size += 1
            try:
                return await asyncpg.connect(self.dsn, command_timeout=30)
            except BaseException:
                self.size -= 1
                self._wake()
                raise
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            connection = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()  # handed over just as we were cancelled: pass it on
                if handed is None:
                    self._wake()
                else:
                    self.release(handed)
            raise
        if connection is None:  # a slot was freed: open a connection of our own
            return await self.acquire()
        return connection

    def release(self, connection: Any, broken: bool = False) -> None:
        if broken or connection.is_closed() or connection.is_in_transaction():
            connection.terminate()
            self.size -= 1
            self._wake()
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self.idle.append(connection)

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        idle, self.idle = self.idle, []
        for connection in idle:
            await connection.close()
        self.size -= len(idle)

    def terminate(self) -> None:
        for connection in self.idle:
            connection.terminate()
        self.idle = []


class PostgresDirect:
    """A small asyncpg pool of its own (asyncpg prepares each statement once per connection)."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, max_size: int = 10) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self._pool: _Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unavailable = _unavailable_errors()
        self.healthy = True

    def _get_pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            if self._pool is not None:  # bound to a loop that is gone
                self._pool.terminate()
            self._pool, self._loop = _Pool(self.dsn, self.max_size), loop
        return self._pool

    async def run(self, unit: Unit[T], *, write: bool) -> T:
        pool = self._get_pool()
        try:
            connection = await pool.acquire()
        except self._unavailable as exc:
            raise self._down(exc) from exc
        broken = True
        try:
            async with connection.transaction():
                result = await unit(_PostgresTx(connection))
            broken = False
            self.healthy = True
            return result
        except self._unavailable as exc:
            raise self._down(exc) from exc
        except BaseException:
            broken = connection.is_closed()
            raise
        finally:
            pool.release(connection, broken)

    async def fetch_one(self, sql: SQL, *args: Any) -> Row | None:
        pool = self._get_pool()
        try:
            connection = await pool.acquire()
        except self._unavailable as exc:
            raise self._down(exc) from exc
        broken = True
        try:
            row = await connection.fetchrow(sql.postgresql, *args)
            broken = False
            self.healthy = True
        except self._unavailable as exc:
            raise self._down(exc) from exc
        finally:
            pool.release(connection, broken)
        return None if row is None else tuple(row)

    def _down(self, exc: BaseException) -> DatabaseUnavailable:
        self.healthy = False
        return DatabaseUnavailable(f"PostgreSQL is unavailable: {type(exc).__name__}")

    @staticmethod
    def timestamp(moment: datetime) -> datetime:
        return moment.astimezone(UTC)

    @staticmethod
    def moment(value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    async def close(self) -> None:
        if self._pool is not None:
            if self._loop is asyncio.get_running_loop():
                await self._pool.close()
            else:
                self._pool.terminate()
            self._pool = None


class Direct(Protocol):
    """The hot-path access of one database (:class:`SQLiteDirect` or :class:`PostgresDirect`)."""

    dialect: str
    healthy: bool
    """False from a :class:`DatabaseUnavailable` until the next statement that succeeds."""

    async def run(self, unit: Unit[T], *, write: bool) -> T: ...

    async def fetch_one(self, sql: SQL, *args: Any) -> Row | None: ...

    def timestamp(self, moment: datetime) -> Any: ...

    def moment(self, value: Any) -> datetime: ...

    async def close(self) -> None: ...
