"""Every public package re-exports a deliberate ``__all__`` (ARCHITECTURE.md, last rule).

For each package: ``__all__`` is a list without duplicates (ruff keeps it sorted); every name is importable from
the package and ``import *`` gives exactly those names; nothing private (an underscore name, or
an object defined outside relaygate) is exported; and the names other layers rely on are there.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

REQUIRED: dict[str, set[str]] = {
    "relaygate.protocol": {"Connection", "Message", "ProtocolError", "Router", "Serializer", "V1", "V2"},
    "relaygate.protocol.gateway": {
        "CallContext",
        "ConfigError",
        "FunctionSpec",
        "ServiceError",
        "validate_args",
    },
    "relaygate.pubsub": {"Broadcast", "MemoryPubSub", "PubSub", "RedisPubSub", "Subscriber"},
    "relaygate.history": {"History", "Keep", "Merge", "MemoryHistory", "Position", "RedisHistory"},
    "relaygate.presence": {"MemoryPresence", "Presence", "RedisPresence"},
    "relaygate.channels": {"Channel", "ChannelSocket", "Endpoint", "Reply", "Socket", "Stop"},
    "relaygate.client": {"Client", "ClientChannel", "ConnectError", "PresenceState"},
    "relaygate.gateway": {"CallerContext", "Gateway", "GatewayError", "RedisCluster", "Registry"},
    "relaygate.service": {"CallContext", "Service", "ServiceError", "ServiceNode", "run"},
    "relaygate.accounts": {"Accounts", "Credentials", "Principal", "TokenCodec", "User"},
    "relaygate.node": {"App", "Node", "create_app", "load_app", "migrate", "token_socket"},
    "relaygate.web": {
        "ACCOUNT_ROUTERS",
        "Call",
        "Page",
        "Problem",
        "Reply",
        "Representation",
        "ResourceGroup",
    },
    "relaygate": {"App"},
    "relaygate.mail": {"Email", "LocalAdapter", "Mailer", "SMTPAdapter"},
    "relaygate.db": {"Base", "Database"},
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_all_is_deliberate(name: str) -> None:
    package = importlib.import_module(name)
    exported = package.__all__
    assert isinstance(exported, list)
    assert len(exported) == len(set(exported)), "__all__ lists a name twice"
    assert REQUIRED[name] <= set(exported), REQUIRED[name] - set(exported)
    for attribute in exported:
        assert not attribute.startswith("_"), f"{name} exports the private name {attribute}"
        value = getattr(package, attribute)  # AttributeError: listed but not there
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("relaygate."), f"{name}.{attribute} is not ours"
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(exported)
