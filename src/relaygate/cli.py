"""The ``relaygate`` command line."""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn

from relaygate.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from relaygate.node import App

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Relaygate realtime API node.")
users_cli = typer.Typer(no_args_is_help=True, help="Manage users.")
cli.add_typer(users_cli, name="users")
service_cli = typer.Typer(no_args_is_help=True, help="Run gateway service nodes.")
cli.add_typer(service_cli, name="service")
gateway_cli = typer.Typer(
    no_args_is_help=True,
    help="Inspect and change the gateway registry of a cluster (through Redis). "
    "Write an unversioned function's VERSION as '_'.",
)
cli.add_typer(gateway_cli, name="gateway")
gen_cli = typer.Typer(no_args_is_help=True, help="Add code to the project in the current folder.")
cli.add_typer(gen_cli, name="gen")
AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        metavar="MODULE:ATTR",
        help="The relaygate.App to use (default: [tool.relaygate] app in ./pyproject.toml, else the reference app)",
    ),
]
RedisOption = Annotated[
    str | None, typer.Option("--redis", help="Redis URL of the cluster (default: RELAYGATE_REDIS_URL)")
]


def settings_or_exit(cls: type[Settings] = Settings, **overrides: Any) -> Settings:
    """Load settings; a bad setting prints one line and exits with code 2."""
    try:
        return load_settings(cls, **{key: value for key, value in overrides.items() if value is not None})
    except ConfigError as exc:
        typer.echo(f"relaygate: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def app_or_exit(target: str | None) -> App:
    """The app to serve (``--app``, the project's, else the reference app); one line and exit 2 if not."""
    from relaygate.node import AppNotFound, load_app

    try:
        return load_app(target)
    except AppNotFound as exc:
        typer.echo(f"relaygate: {exc}", err=True)
        raise typer.Exit(2) from None


def _migrate(app: App, settings: Settings) -> list[str]:
    from relaygate.node import migrate

    try:
        return asyncio.run(migrate(app, settings.database_url))
    except ConfigError as exc:
        typer.echo(f"relaygate: {exc}", err=True)
        raise typer.Exit(2) from None


class _Server(uvicorn.Server):
    """Drains channel sockets (close 1012, presences untracked) before uvicorn stops.

    SIGTERM is the normal way to stop a node, so after the drain the process exits 0 instead of
    re-raising the signal as uvicorn does.
    """

    drain: Any = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        # What exists once the node has started (modules, the app, its parts) lives as long as the
        # process: freezing it keeps the collector from walking ~100k objects in every full
        # collection, which connections (a few dozen objects each) would otherwise trigger often.
        gc.collect()
        gc.freeze()

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        if self.drain is not None:
            await self.drain()
        await super().shutdown(sockets)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    migrate: Annotated[bool, typer.Option("--migrate", help="Apply migrations on PostgreSQL too")] = False,
    workers: Annotated[
        int,
        typer.Option(min=1, help="Processes on one port (SO_REUSEPORT), each a cluster node through Redis"),
    ] = 1,
    reuse_port: Annotated[bool, typer.Option("--reuse-port", hidden=True)] = False,
    app_target: AppOption = None,
) -> None:
    """Run a node (applies pending migrations on SQLite; on PostgreSQL only with --migrate)."""
    _import_from_cwd()
    served = app_or_exit(app_target)
    settings = settings_or_exit(served.settings, host=host, port=port)
    from relaygate.node import create_app
    from relaygate.supervisor import Supervisor, reuse_port_socket
    from relaygate.telemetry.logging import configure_logging
    from relaygate.web.server import http_protocol, server_config

    configure_logging(json=settings.env == "prod", level=settings.log_level)
    if workers > 1 and settings.redis_url is None:
        typer.echo("relaygate: --workers needs RELAYGATE_REDIS_URL (each worker is a cluster node)", err=True)
        raise typer.Exit(2)
    if (settings.is_sqlite or migrate) and not reuse_port:  # a worker's supervisor migrated already
        _migrate(served, settings)
    if workers > 1:
        supervisor = Supervisor(workers, settings.host, settings.port, settings.node_name, app_target)
        raise typer.Exit(supervisor.run())
    app = create_app(settings, app=served)
    endpoint = app.state.relaygate.endpoint
    config = server_config(
        endpoint.wrap(app),
        settings.host,
        settings.port,
        ws=endpoint.websocket_protocol(),
        http=endpoint.http_protocol(http_protocol()),
    )
    server = _Server(config)
    server.drain = app.state.relaygate.drain
    server.run(sockets=[reuse_port_socket(settings.host, settings.port)] if reuse_port else None)


@cli.command()
def migrate(app_target: AppOption = None) -> None:
    """Apply database migrations (Alembic)."""
    _import_from_cwd()
    served = app_or_exit(app_target)
    settings = settings_or_exit(served.settings)
    applied = _migrate(served, settings)
    typer.echo(f"applied {len(applied)} migration(s)" if applied else "database is up to date")


@cli.command()
def routes(app_target: AppOption = None) -> None:
    """List HTTP routes, socket endpoints with their channel topics, and gateway functions."""
    _import_from_cwd()
    served = app_or_exit(app_target)
    settings = settings_or_exit(served.settings)
    from relaygate.node import create_app
    from relaygate.web.introspect import describe_gateway, describe_routes, describe_sockets

    app = create_app(settings, app=served)
    node = app.state.relaygate
    for line in describe_routes(app.routes):
        typer.echo(line)
    for line in describe_sockets(node.endpoint):
        typer.echo(line)
    if node.gateway_cluster is not None:  # the cluster's functions too
        asyncio.run(_pull_registry(node))
    for line in describe_gateway(node.gateway.registry.listing()):
        typer.echo(line)


def _import_from_cwd() -> None:
    """Like uvicorn: MODULE:ATTR targets (and RELAYGATE_GATEWAY_MODULE) import from the current folder."""
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")


async def _pull_registry(node: Any) -> None:
    from redis.exceptions import RedisError

    try:
        await node.gateway_cluster.pull()
    except (RedisError, OSError) as exc:
        typer.echo(f"relaygate: cluster functions not listed, Redis failed: {type(exc).__name__}", err=True)
    finally:
        await node.redis.aclose()


async def _with_cluster(redis_url: str, work: Any) -> Any:
    """Read the cluster's registry and liveness once (no subscription) and run ``work(admin)``."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from relaygate.gateway import RedisCluster

    redis = Redis.from_url(redis_url)
    try:
        cluster = RedisCluster(redis, node_name=f"cli:{os.getpid()}")
        await cluster.pull()
        await cluster.check_liveness()
        return await work(cluster.admin)
    except (RedisError, OSError) as exc:
        typer.echo(f"relaygate: cannot reach Redis at the given URL: {type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    finally:
        await redis.aclose()


def _redis_url_or_exit(redis: str | None) -> str:
    url = redis or settings_or_exit().redis_url
    if not url:
        typer.echo(
            "relaygate: give --redis URL or set RELAYGATE_REDIS_URL (a single node's registry "
            "is managed through its admin API, /api/v1/gateway)",
            err=True,
        )
        raise typer.Exit(2)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        typer.echo("relaygate: --redis must be a redis:// URL", err=True)
        raise typer.Exit(2)
    return url


@service_cli.command("run")
def service_run(
    target: Annotated[str, typer.Argument(metavar="MODULE:ATTR", help="A relaygate.service.Service object")],
    redis: RedisOption = None,
    node_name: Annotated[
        str | None, typer.Option(help="This node's name (default: service@host:pid:random)")
    ] = None,
) -> None:
    """Run a service node that registers the functions of a Service with the gateway."""
    from relaygate.gateway.local import import_target
    from relaygate.protocol.gateway.options import ConfigError as GatewayConfigError
    from relaygate.service import Service, run
    from relaygate.telemetry.logging import configure_logging

    url = _redis_url_or_exit(redis)
    _import_from_cwd()
    try:
        service = import_target(target)
    except GatewayConfigError as exc:
        typer.echo(f"relaygate: {exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(service, Service):
        typer.echo(f"relaygate: {target} is not a relaygate.service.Service", err=True)
        raise typer.Exit(2)
    configure_logging(json=False, level="info")
    run(service, url, node_name=node_name)


@gateway_cli.command("services")
def gateway_services(redis: RedisOption = None) -> None:
    """Each service with its config_version and nodes (liveness, last heartbeat)."""
    services = asyncio.run(_with_cluster(_redis_url_or_exit(redis), _services))
    if not services:
        typer.echo("no services")
    for entry in services:
        typer.echo(f"{entry['service']}  config_version={entry['config_version']}")
        for node in entry["nodes"]:
            state = "alive" if node["alive"] else "dead"
            if node["draining"]:
                state += ",draining"
            typer.echo(f"  {node['name']}  {state}  last_heartbeat={node['last_heartbeat']}")


async def _services(admin: Any) -> Any:
    return await admin.services()


@gateway_cli.command("functions")
def gateway_functions(redis: RedisOption = None) -> None:
    """Every function version with its response type, nodes and whether it is enabled."""
    from relaygate.web.introspect import describe_gateway

    async def read(admin: Any) -> Any:
        return admin.functions()

    listing = asyncio.run(_with_cluster(_redis_url_or_exit(redis), read))
    lines = list(describe_gateway(listing))
    for line in lines or ["no functions"]:
        typer.echo(line.removeprefix("GATEWAY").strip())


def _change(kind: str, service: str, request_type: str, version: str, redis: str | None) -> None:
    from relaygate.gateway import GatewayError

    key = (service, request_type, None if version == "_" else version)

    async def change(admin: Any) -> None:
        try:
            await getattr(admin, kind)(key)
        except GatewayError:
            typer.echo(f"relaygate: no function {service} {request_type} {version}", err=True)
            raise typer.Exit(1) from None

    asyncio.run(_with_cluster(_redis_url_or_exit(redis), change))
    typer.echo(f"{kind}d {service} {request_type} {version}")


@gateway_cli.command("disable")
def gateway_disable(service: str, request_type: str, version: str, redis: RedisOption = None) -> None:
    """Disable one function version on every gateway node."""
    _change("disable", service, request_type, version, redis)


@gateway_cli.command("enable")
def gateway_enable(service: str, request_type: str, version: str, redis: RedisOption = None) -> None:
    """Enable one function version again."""
    _change("enable", service, request_type, version, redis)


async def _create_user(app: App, settings: Settings, fields: dict[str, Any], role: str) -> str:
    from relaygate.accounts import NewUser
    from relaygate.node import Node, migrate

    if settings.is_sqlite:  # the embedded default is migrated on use, as `serve` does
        await migrate(app, settings.database_url)
    node = Node(settings, app)
    try:
        account = await node.accounts.register(NewUser(**fields), role=role)
        return f"created {role} {account.email} (id {account.id})"
    finally:
        await node.stop()


@users_cli.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Email address (unique)")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="12..128 characters")
    ],
    name: Annotated[str | None, typer.Option(help="First name (default: the email's local part)")] = None,
    subname: Annotated[str, typer.Option(help="Last name")] = "-",
    job: Annotated[str | None, typer.Option(help="Job title")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role")] = False,
    app_target: AppOption = None,
) -> None:
    """Create a user, e.g. the first admin."""
    from pydantic import ValidationError

    from relaygate.accounts import InvalidInput
    from relaygate.accounts.schemas import field_errors

    _import_from_cwd()
    served = app_or_exit(app_target)
    settings = settings_or_exit(served.settings)
    fields = {
        "email": email,
        "password": password,
        "name": name or email.partition("@")[0],
        "subname": subname,
        "job": job or ("Administrator" if admin else "Member"),
    }
    try:
        typer.echo(asyncio.run(_create_user(served, settings, fields, "admin" if admin else "user")))
    except (ValidationError, InvalidInput) as exc:
        errors = field_errors(exc) if isinstance(exc, ValidationError) else exc.errors
        for field, messages in errors.items():
            typer.echo(f"relaygate: {field}: {'; '.join(messages)}", err=True)
        raise typer.Exit(1) from None


def _scaffold(work: Any, *args: Any) -> None:
    """Run a generator; its refusal is one line and exit code 2, what it wrote one line per file."""
    from relaygate.scaffold import ScaffoldError

    try:
        lines = work(*args)
    except ScaffoldError as exc:
        typer.echo(f"relaygate: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in lines:
        typer.echo(f"* {line}")


def _project() -> Any:
    from pathlib import Path

    from relaygate.scaffold import ScaffoldError, find_project

    try:
        return find_project(Path.cwd())
    except ScaffoldError as exc:
        typer.echo(f"relaygate: {exc}", err=True)
        raise typer.Exit(2) from None


@cli.command("new")
def new(
    path: Annotated[str, typer.Argument(help="Folder to create (missing or empty)")],
    module: Annotated[
        str | None, typer.Option(help="Python package name (default: the folder's name)")
    ] = None,
) -> None:
    """Create a runnable project: token auth, a socket at /socket, SQLite, tests."""
    from pathlib import Path

    from relaygate.scaffold import new_project

    _scaffold(new_project, Path(path), module)
    typer.echo(f"\nNext: cd {path} && pip install -e '.[dev]' && relaygate serve   (tests: pytest)")


@gen_cli.command("channel")
def gen_channel(name: Annotated[str, typer.Argument(help="Topic prefix: the channel serves NAME:*")]) -> None:
    """A channel for NAME:* (ping replies with the payload, shout broadcasts it) and its test."""
    from relaygate.scaffold import gen_channel as generate

    _scaffold(generate, _project(), name)


@gen_cli.command("resource")
def gen_resource(
    context: Annotated[str, typer.Argument(help="Context (package under contexts/), e.g. catalog")],
    name: Annotated[str, typer.Argument(help="Model name, e.g. Product")],
    plural: Annotated[str, typer.Argument(help="Table and path name, e.g. products")],
    fields: Annotated[
        list[str], typer.Argument(help="FIELD:TYPE..., TYPE one of str, text, int, bool, float, datetime")
    ],
) -> None:
    """A table, its migration, context functions, a resource under /api/v1/PLURAL and its tests."""
    from relaygate.scaffold import gen_resource as generate

    _scaffold(generate, _project(), context, name, plural, fields)


@gen_cli.command("migration")
def gen_migration(name: Annotated[str, typer.Argument(help="What it does, e.g. add_stock")]) -> None:
    """An Alembic revision autogenerated from the app's models."""
    from relaygate.scaffold import gen_migration as generate

    _scaffold(generate, _project(), name)


@cli.command("gen-secret")
def gen_secret() -> None:
    """Print a new secret key for RELAYGATE_SECRET_KEY."""
    typer.echo(secrets.token_urlsafe(48))


def main() -> None:
    try:
        cli()
    except ConfigError as exc:  # settings read lazily inside a command
        print(f"relaygate: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
