"""The node runtime: serves an :class:`App` with everything a Relaygate node does (lifespan, drain
on SIGTERM, health and readiness, metrics, request-id logs, cluster mode, token auth, the gateway)."""

from relaygate.node.app import App, ContextsFactory, GatewayFunctions, Hook, Router, SocketFactory
from relaygate.node.loading import REFERENCE_APP, AppNotFound, app_target, import_app, load_app
from relaygate.node.runtime import DRAIN_GRACE_S, Node, create_app, node_lifespan, shared_redis
from relaygate.node.schema import migrate
from relaygate.node.sockets import token_socket

__all__ = [
    "DRAIN_GRACE_S",
    "REFERENCE_APP",
    "App",
    "AppNotFound",
    "ContextsFactory",
    "GatewayFunctions",
    "Hook",
    "Node",
    "Router",
    "SocketFactory",
    "app_target",
    "create_app",
    "import_app",
    "load_app",
    "migrate",
    "node_lifespan",
    "shared_redis",
    "token_socket",
]
