"""The service node SDK: declare functions with :class:`Service`, run them with :func:`run`.

Service nodes reach the gateway cluster only through Redis (no inbound port)::

    svc = Service("inventory", config_version="1.4.0")

    @svc.function("get_item", version="1.0.0", args={"id": "integer"})
    async def get_item(id: int, ctx: CallContext) -> dict: ...

    run(svc, "redis://127.0.0.1:6379/0")
"""

from relaygate.protocol.gateway.codes import ServiceError
from relaygate.protocol.gateway.context import CallContext
from relaygate.protocol.gateway.options import ConfigError
from relaygate.service.node import ServiceNode, run, serve
from relaygate.service.service import Service

__all__ = ["CallContext", "ConfigError", "Service", "ServiceError", "ServiceNode", "run", "serve"]
