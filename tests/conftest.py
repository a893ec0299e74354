"""Shared fixtures: throwaway servers, databases on SQLite and PostgreSQL, the app over ASGI."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import delete

from company_api.settings import CompanySettings
from relaygate.config import Settings, load_settings
from relaygate.db import Database
from relaygate.db.migrate import upgrade
from relaygate.node import create_app
from tests.reference import MIGRATIONS, metadata
from tests.servers import PostgresServer, RedisServer

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the session's Redis, on a database emptied before the test."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"relaygate_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'relaygate.db'}"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test using this runs once on SQLite and once on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(scope="session")
async def migrated(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database, MIGRATIONS)
    yield database
    await database.dispose()


@pytest.fixture
async def db(migrated: Database) -> AsyncIterator[Database]:
    """A migrated database, emptied before each test."""
    async with migrated.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            await session.execute(delete(table))
    yield migrated


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        CompanySettings, env="test", database_url=database_url, secret_key=TEST_SECRET, redis_url=None
    )


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


_COUNTED = {"postgres": "postgres_server", "redis": "redis_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so the summary can say how many ran on each."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgres"
        if "postgres_server" in fixtures or on_postgres:
            item.add_marker(pytest.mark.postgres)
        if "redis_server" in fixtures:
            item.add_marker(pytest.mark.redis)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    passed = terminalreporter.stats.get("passed", [])
    for marker in _COUNTED:
        count = sum(1 for report in passed if marker in report.keywords)
        terminalreporter.write_line(f"tests passed against {marker}: {count}")
