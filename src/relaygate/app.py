"""Composition root: builds a node's parts from settings and wires them into the web app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import redis.asyncio as aioredis
from fastapi import FastAPI
from redis.exceptions import RedisError

from relaygate.channels import Endpoint
from relaygate.config import ConfigError, Settings, get_settings
from relaygate.contexts.accounts import Accounts, LoginThrottle, MemoryThrottle, RedisThrottle, TokenCodec
from relaygate.contexts.chat import Chat, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from relaygate.db import Database
from relaygate.gateway import Gateway, GatewayAdmin, LocalAdmin, RedisCluster
from relaygate.gateway import local as gateway_local
from relaygate.history import History, RedisHistory
from relaygate.mail import Mailer, adapter_from_settings
from relaygate.presence import MemoryPresence, Presence, RedisPresence
from relaygate.protocol.gateway.options import ConfigError as GatewayConfigError
from relaygate.pubsub import MemoryPubSub, PubSub
from relaygate.pubsub.backoff import Backoff
from relaygate.pubsub.redis import RedisPubSub
from relaygate.web.cors import CORSMiddleware
from relaygate.web.middleware import RequestContextMiddleware
from relaygate.web.problems import install_problem_handlers
from relaygate.web.resources import install_resources
from relaygate.web.routers import conversations, demo, dev, docs, gateway, ops, products, sessions, users
from relaygate.web.socket import app_socket

log = logging.getLogger("relaygate")
DRAIN_GRACE_S: Final = 10.0


def shared_redis(url: str) -> aioredis.Redis:
    """One client for the node's short commands. Its pool waits for a free connection under load
    (redis-py's default pool fails with MaxConnectionsError at 100 concurrent commands)."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=10)
    return aioredis.Redis.from_pool(pool)


class Node:
    """Everything one Relaygate node runs; built once, started and stopped by the app lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.redis: aioredis.Redis | None = shared_redis(settings.redis_url) if settings.redis_url else None
        self.pubsub: PubSub
        self.presence: Presence
        history: History | None = None
        if settings.redis_url is not None and self.redis is not None:
            self.pubsub = RedisPubSub(settings.redis_url, settings.node)
            self.presence = RedisPresence(self.pubsub, self.redis, settings.node)
            history = RedisHistory(self.pubsub)
        else:
            self.pubsub = MemoryPubSub()
            self.presence = MemoryPresence(self.pubsub)
        self.mailer = Mailer(adapter_from_settings(settings), settings.mail_from)
        throttle: LoginThrottle = RedisThrottle(self.redis) if self.redis is not None else MemoryThrottle()
        self.accounts = Accounts(
            self.db,
            self.pubsub,
            TokenCodec(settings.signing_key(), settings.token_ttl),
            self.mailer,
            throttle,
        )
        self.chat = Chat(self.db, self.pubsub, self._chat_limiter())
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
        if settings.gateway_module:
            try:
                gateway_local.install(self.gateway, settings.gateway_module)
            except GatewayConfigError as exc:
                raise ConfigError(f"RELAYGATE_GATEWAY_MODULE: {exc}") from None
        self.endpoint.add_socket(app_socket(self.accounts, self.chat, self.gateway))
        self._tasks: set[asyncio.Task[Any]] = set()

    def _chat_limiter(self) -> RateLimiter:
        limit, window = self.settings.chat_rate_limit, self.settings.chat_rate_window
        if self.redis is not None:
            return RedisRateLimiter(self.redis, limit, window)
        return MemoryRateLimiter(limit, window)

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
        if self.gateway_cluster is not None and not await self._start_gateway_cluster():
            self.spawn(self._start_gateway_cluster_later(), "gateway-cluster-start")
        self.spawn(self.accounts.purge_forever(), "purge-token-revocations")

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
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.gateway.stop()
        if self.gateway_cluster is not None:
            await self.gateway_cluster.stop()
        await self.mailer.stop()
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


def create_app(settings: Settings | None = None, node: Node | None = None) -> FastAPI:
    settings = settings or get_settings()
    node = node or Node(settings)

    app = FastAPI(
        title="Relaygate",
        version="1.0.0",
        lifespan=node_lifespan(node),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.relaygate = node
    install_problem_handlers(app)
    groups = [
        ops.group,
        docs.group,
        products.group,
        users.group,
        sessions.group,
        conversations.group,
        gateway.group,
    ]
    if settings.dev_routes:
        groups.append(dev.group)
        app.include_router(demo.router)
    install_resources(app, groups)
    app.router.routes.extend(node.endpoint.routes())
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins)
    app.add_middleware(RequestContextMiddleware)
    return app
