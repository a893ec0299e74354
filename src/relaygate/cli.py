"""The ``relaygate`` command line."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
from types import FrameType
from typing import Annotated, Any

import typer
import uvicorn

from relaygate.config import ConfigError, Settings, load_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Relaygate realtime API node.")
users_cli = typer.Typer(no_args_is_help=True, help="Manage users.")
cli.add_typer(users_cli, name="users")


def settings_or_exit(**overrides: Any) -> Settings:
    """Load settings; a bad setting prints one line and exits with code 2."""
    try:
        return load_settings(**{key: value for key, value in overrides.items() if value is not None})
    except ConfigError as exc:
        typer.echo(f"relaygate: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


async def _migrate(settings: Settings) -> list[str]:
    from relaygate.db import Database
    from relaygate.db.migrate import pending, upgrade

    database = Database(settings.database_url)
    try:
        todo = await pending(database)
        await upgrade(database)
        return todo
    finally:
        await database.dispose()


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

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        if self.drain is not None:
            await self.drain()
        await super().shutdown(sockets)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    migrate: Annotated[bool, typer.Option("--migrate", help="Apply migrations on PostgreSQL too")] = False,
) -> None:
    """Run a node (applies pending migrations on SQLite; on PostgreSQL only with --migrate)."""
    settings = settings_or_exit(host=host, port=port)
    from relaygate.app import create_app
    from relaygate.telemetry.logging import configure_logging

    configure_logging(json=settings.env == "prod", level=settings.log_level)
    if settings.is_sqlite or migrate:
        asyncio.run(_migrate(settings))
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        date_header=False,
        ws_max_size=16 * 1024 * 1024,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    server.drain = app.state.relaygate.drain
    server.run()


@cli.command()
def migrate() -> None:
    """Apply database migrations (Alembic)."""
    settings = settings_or_exit()
    applied = asyncio.run(_migrate(settings))
    typer.echo(f"applied {len(applied)} migration(s)" if applied else "database is up to date")


@cli.command()
def routes() -> None:
    """List HTTP routes, socket endpoints with their channel topics, and gateway functions."""
    settings = settings_or_exit()
    from relaygate.app import create_app
    from relaygate.web.introspect import describe_routes

    for line in describe_routes(create_app(settings).routes):
        typer.echo(line)


async def _create_user(settings: Settings, fields: dict[str, Any], role: str) -> str:
    from relaygate.app import Node
    from relaygate.contexts.accounts import NewUser

    if settings.is_sqlite:  # the embedded default is migrated on use, as `serve` does
        await _migrate(settings)
    node = Node(settings)
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
) -> None:
    """Create a user, e.g. the first admin."""
    from pydantic import ValidationError

    from relaygate.contexts.accounts import InvalidInput
    from relaygate.contexts.accounts.schemas import field_errors

    settings = settings_or_exit()
    fields = {
        "email": email,
        "password": password,
        "name": name or email.partition("@")[0],
        "subname": subname,
        "job": job or ("Administrator" if admin else "Member"),
    }
    try:
        typer.echo(asyncio.run(_create_user(settings, fields, "admin" if admin else "user")))
    except (ValidationError, InvalidInput) as exc:
        errors = field_errors(exc) if isinstance(exc, ValidationError) else exc.errors
        for field, messages in errors.items():
            typer.echo(f"relaygate: {field}: {'; '.join(messages)}", err=True)
        raise typer.Exit(1) from None


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
