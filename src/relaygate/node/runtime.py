"""The node runtime: builds a node's parts from settings, serves an :class:`App` on them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from redis.exceptions import RedisError

from relaygate.accounts import Accounts, LoginThrottle, MemoryThrottle, RedisThrottle, TokenCodec
from relaygate.channels import Endpoint
from relaygate.config import ConfigError, Settings
from relaygate.dashboard import Dashboard, dashboard_socket
from relaygate.dashboard import group as dashboard_group
from relaygate.db import Database
from relaygate.gateway import Gateway, GatewayAdmin, LocalAdmin, RedisCluster
from relaygate.gateway import local as gateway_local
from relaygate.history import History, RedisHistory
from relaygate.mail import Mailer, adapter_from_settings
from relaygate.node.app import App
from relaygate.presence import MemoryPresence, Presence, RedisPresence
from relaygate.protocol.gateway.options import ConfigError as GatewayConfigError
from relaygate.pubsub import MemoryPubSub, PubSub
from relaygate.pubsub.backoff import Backoff
from relaygate.pubsub.redis import RedisPubSub
from relaygate.service import Service
from relaygate.web.cors import CORSMiddleware
from relaygate.web.middleware import RequestContextMiddleware
from relaygate.web.problems import install_problem_handlers
from relaygate.web.resources import ResourceGroup, install_resources
from relaygate.web.routers import dev, docs, gateway, ops

log = logging.getLogger("relaygate")
DRAIN_GRACE_S: Final = 10.0


def shared_redis(url: str) -> aioredis.Redis:
    """One client for the node's short commands. Its pool waits for a free connection under load
    (redis-py's default pool fails with MaxConnectionsError at 100 concurrent commands)."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=10)
    return aioredis.Redis.from_pool(pool)


class Node:
    """Everything one Relaygate node runs for ``app``; built once, started and stopped by the lifespan.

    ``settings`` is widened to the app's settings class; ``node.contexts`` is what the app's
    ``contexts`` factory built (``None`` without one).
    """

    def __init__(self, settings: Settings | None = None, app: App | None = None) -> None:
        if app is None:
            from relaygate.node.loading import load_app

            app = load_app(None)
        self.app = app
        settings = app.configure(settings)
        self.settings = settings
        self.db = Database(settings.database_url)
        self.redis: aioredis.Redis | None = shared_redis(settings.redis_url) if settings.redis_url else None
        self.pubsub: PubSub
        self.presence: Presence
        history: History | None = None
        if settings.redis_url is not None and self.redis is not None:
            self.pubsub = RedisPubSub(settings.redis_url, settings.node)
            self.presence = RedisPresence(
                self.pubsub, self.redis, settings.node, diff_window=settings.presence_diff_window
            )
            history = RedisHistory(self.pubsub)
        else:
            self.pubsub = MemoryPubSub()
            self.presence = MemoryPresence(self.pubsub, diff_window=settings.presence_diff_window)
        self.mailer = Mailer(adapter_from_settings(settings), settings.mail_from)
        throttle: LoginThrottle = RedisThrottle(self.redis) if self.redis is not None else MemoryThrottle()
        self.accounts = Accounts(
            self.db,
            self.pubsub,
            TokenCodec(settings.signing_key(), settings.token_ttl),
            self.mailer,
            throttle,
        )
        self.endpoint = Endpoint(
            self.pubsub,
            self.presence,
            check_origin=settings.allowed_origins,
            longpoll=settings.longpoll,
            history=history,
        )
        self.gateway_cluster: RedisCluster | None = None
        self.gateway: Gateway
        self.gateway_admin: GatewayAdmin
        if self.redis is not None:
            self.gateway_cluster = RedisCluster(self.redis, node_name=settings.node)
            self.gateway = self.gateway_cluster.gateway(debug_errors=settings.gateway_debug_errors)
            self.gateway_admin = self.gateway_cluster.admin
        else:
            self.gateway = Gateway(debug_errors=settings.gateway_debug_errors)
            self.gateway_admin = LocalAdmin(self.gateway.registry, self.gateway.limiter)
        for functions in app.gateway:
            if isinstance(functions, Service):
                gateway_local.register_service_locally(self.gateway, functions)
            else:
                functions(self.gateway)
        if settings.gateway_module:
            try:
                gateway_local.install(self.gateway, settings.gateway_module)
            except GatewayConfigError as exc:
                raise ConfigError(f"RELAYGATE_GATEWAY_MODULE: {exc}") from None
        self.contexts: Any = app.contexts(self) if app.contexts is not None else None
        for socket in app.sockets:
            self.endpoint.add_socket(socket(self))
        self.dashboard = Dashboard(self)
        self.endpoint.add_socket(dashboard_socket(self.dashboard, self.accounts))
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a background task for the node's lifetime; its failure is logged, never lost."""
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def start(self) -> None:
        await self.pubsub.start()
        await self.presence.start()
        if self.endpoint.history is not None:
            await self.endpoint.history.start()
        await self.accounts.start()
        await self.dashboard.start()
        if self.gateway_cluster is not None and not await self._start_gateway_cluster():
            self.spawn(self._start_gateway_cluster_later(), "gateway-cluster-start")
        self.spawn(self.accounts.purge_forever(), "purge-token-revocations")
        for hook in self.app.on_startup:
            await hook(self)

    async def _start_gateway_cluster(self) -> bool:
        """Join the gateway cluster; False when Redis does not answer (``/readyz`` says so meanwhile)."""
        assert self.gateway_cluster is not None
        try:
            await self.gateway_cluster.start()
            return True
        except (RedisError, OSError) as exc:
            log.warning("gateway cannot reach Redis yet (%s); retrying in the background", type(exc).__name__)
            await self.gateway_cluster.stop()
            return False

    async def _start_gateway_cluster_later(self) -> None:
        backoff = Backoff(first=0.2, cap=5.0)
        while True:
            await asyncio.sleep(backoff.next_delay())
            if await self._start_gateway_cluster():
                return

    async def drain(self, grace: float = DRAIN_GRACE_S) -> None:
        """Called on SIGTERM before the server stops: refuse new sockets and gateway calls, let the
        running gateway calls finish (up to ``grace`` seconds), then close sockets cleanly (1012)."""
        self.endpoint.draining = True
        await self.gateway.drain(grace)
        await self.endpoint.drain(grace)

    async def stop(self) -> None:
        for hook in self.app.on_shutdown:
            await hook(self)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.gateway.stop()
        if self.gateway_cluster is not None:
            await self.gateway_cluster.stop()
        await self.mailer.stop()
        await self.dashboard.stop()
        await self.accounts.stop()
        if self.endpoint.history is not None:
            await self.endpoint.history.stop()
        await self.presence.stop()
        await self.pubsub.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()


def node_lifespan(node: Node) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """An ASGI lifespan that starts ``node`` with the server and stops it after."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    return lifespan


def create_app(settings: Settings | None = None, node: Node | None = None, app: App | None = None) -> FastAPI:
    """The ASGI app serving ``app`` (default: ``node.app``, else the app :func:`load_app` finds)."""
    if node is None:
        node = Node(settings, app)
    settings = node.settings
    app = node.app

    web = FastAPI(
        title=app.name,
        version=app.version,
        lifespan=node_lifespan(node),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    web.state.relaygate = node
    install_problem_handlers(web)
    routers: list[ResourceGroup | APIRouter] = [
        ops.group,
        docs.group,
        *app.routers,
        gateway.group,
        dashboard_group,
    ]
    if settings.dev_routes:
        routers.extend([dev.group, *app.dev_routers])
    for router in routers:
        if isinstance(router, APIRouter):
            web.include_router(router)
    install_resources(web, [router for router in routers if isinstance(router, ResourceGroup)])
    web.router.routes.extend(node.endpoint.routes())
    if settings.cors_origins:
        web.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins)
    web.add_middleware(RequestContextMiddleware)
    return web
