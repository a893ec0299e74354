"""``App``: the one object that describes an application to the node runtime.

The runtime (:class:`relaygate.node.Node`) owns what every app gets (database, PubSub, Presence,
accounts and token auth, mail, the gateway, the channel endpoint, health, metrics, OpenAPI); an
``App`` adds its own routes, sockets, contexts, tables, migrations, gateway functions and settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from fastapi import APIRouter
from sqlalchemy import MetaData

from relaygate.config import Settings
from relaygate.db import Base
from relaygate.db.migrate import Migrations
from relaygate.service import Service
from relaygate.web.resources import ResourceGroup

if TYPE_CHECKING:
    from relaygate.channels import Socket
    from relaygate.gateway import Gateway
    from relaygate.node.runtime import Node

Router: TypeAlias = ResourceGroup | APIRouter
"""A group of resources (the HTTP semantics of the resource layer) or a plain FastAPI router."""
SocketFactory: TypeAlias = Callable[["Node"], "Socket"]
ContextsFactory: TypeAlias = Callable[["Node"], Any]
Hook: TypeAlias = Callable[["Node"], Awaitable[None]]
GatewayFunctions: TypeAlias = Service | Callable[["Gateway"], None]


@dataclass(frozen=True, slots=True)
class App:
    """An application the node serves (``relaygate serve --app MODULE:ATTR``).

    - ``routers``: resource groups or FastAPI routers, mounted after the framework's own routes
      (``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``, ``/docs``, the gateway admin API);
      ``dev_routers`` only when ``RELAYGATE_ENV`` is not ``prod``.
    - ``sockets``: each builds one :class:`relaygate.channels.Socket` from the node (its contexts,
      accounts, gateway); :func:`relaygate.node.token_socket` gives one with token auth.
    - ``contexts``: builds the app's state from the node once; routers and channels reach it as
      ``node.contexts`` (``call.node.contexts`` in a resource handler).
    - ``metadata``: the tables Alembic compares against (the framework's accounts tables included
      when the app uses the shared :class:`relaygate.db.Base`); ``migrations``: the folder (or the
      importable package) holding the app's revision files.
    - ``gateway``: functions that run on the gateway node itself (a ``Service`` or ``register(gateway)``).
    - ``settings``: a :class:`relaygate.config.Settings` subclass with the app's own ``RELAYGATE_*`` variables.
    - ``on_startup`` / ``on_shutdown``: awaited with the node after it started / before it stops.
    """

    name: str
    routers: Sequence[Router] = ()
    dev_routers: Sequence[Router] = ()
    sockets: Sequence[SocketFactory] = ()
    contexts: ContextsFactory | None = None
    metadata: MetaData = Base.metadata
    migrations: str | Path | None = None
    gateway: Sequence[GatewayFunctions] = ()
    settings: type[Settings] = Settings
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    version: str = "1.0.0"

    def configure(self, settings: Settings | None) -> Settings:
        """The app's settings: read from the environment, or ``settings`` widened to the app's class
        (its own variables then come from the environment or their defaults)."""
        if settings is None:
            from relaygate.config import load_settings

            return load_settings(cls=self.settings)
        if isinstance(settings, self.settings):
            return settings
        from relaygate.config import load_settings

        return load_settings(cls=self.settings, **settings.model_dump())

    def schema(self) -> Migrations | None:
        """The app's revision files and metadata; a package name is resolved to its folder."""
        if self.migrations is None:
            return None
        folder: Path
        if isinstance(self.migrations, Path) or "/" in self.migrations:
            folder = Path(self.migrations)
        else:
            import importlib.util

            spec = importlib.util.find_spec(self.migrations)
            if spec is None or not spec.submodule_search_locations:
                raise ValueError(f"migrations: {self.migrations} is not an importable package")
            folder = Path(next(iter(spec.submodule_search_locations)))
        return Migrations(folder, self.metadata)
