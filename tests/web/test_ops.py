import httpx
import pytest
from redis import exceptions as redis_errors
from sqlalchemy import exc as db_errors

from relaygate.config import Settings
from relaygate.db import Database
from relaygate.node import create_app
from relaygate.web.problems import is_outage
from tests.servers import free_port


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_reports_the_database(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_request_id_is_echoed_when_valid(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    response = await http.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"


async def test_metrics_count_requests_by_route_and_status(http: httpx.AsyncClient) -> None:
    await http.get("/healthz")
    await http.get("/no/such/route")
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'relaygate_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'relaygate_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert 'relaygate_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/healthz"}' in text
    counted = [
        line for line in text.splitlines() if line.startswith("relaygate_http_request_duration_seconds_count")
    ]
    assert any('route="/healthz"' in line and float(line.split()[-1]) >= 1 for line in counted)


async def test_generated_request_ids_are_distinct_hex(http: httpx.AsyncClient) -> None:
    ids = [(await http.get("/healthz")).headers["x-request-id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in ids)


async def test_readyz_in_cluster_mode_checks_redis(settings: Settings, db: Database, redis_url: str) -> None:
    live = create_app(settings.model_copy(update={"redis_url": redis_url}))
    dead = create_app(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    for application, status, redis_check in ((live, 200, "ok"), (dead, 503, "error")):
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/readyz")
        assert response.status_code == status
        body = response.json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith(redis_check)


class _PgError(Exception):
    """A driver error as SQLAlchemy's asyncpg adapter raises it: with its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (redis_errors.ConnectionError("refused"), True),
        (redis_errors.TimeoutError("slow"), True),
        (redis_errors.ResponseError("LOADING Redis is loading the dataset"), True),
        (redis_errors.ResponseError("ERR wrong number of arguments"), False),
        (db_errors.OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
        (db_errors.IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (ConnectionRefusedError(111, "refused"), True),
        (db_errors.DBAPIError("SELECT 1", {}, _PgError("57P03")), True),  # starting up
        (db_errors.DBAPIError("SELECT 1", {}, _PgError("57P01")), True),  # admin shutdown
        (db_errors.DBAPIError("SELECT 1", {}, _PgError("23505")), False),  # a unique violation
        (RuntimeError("a bug"), False),
    ],
)
def test_only_outages_are_503(error: Exception, outage: bool) -> None:
    assert is_outage(error) is outage
