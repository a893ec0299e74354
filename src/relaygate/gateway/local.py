"""Local gateway functions from Python configuration (``RELAYGATE_GATEWAY_MODULE=pkg.mod:attr``).

The target is imported like uvicorn's ``module:attr`` app paths and is either

- a :class:`relaygate.service.Service`: its functions run on the gateway node itself
  (``nodes: "local"``), so one declaration serves a one-node setup and a service node alike; or
- a callable ``register(gateway)`` that calls ``gateway.register_local(...)`` as often as it likes.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from relaygate.gateway.gateway import Gateway
from relaygate.protocol.gateway.options import ConfigError
from relaygate.service import Service

_NOT_OPTIONS = ("service", "request_type", "nodes")


def import_target(target: str) -> Any:
    """The object named by ``package.module:attribute``; :class:`ConfigError` when it is not there."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"{target!r} is not of the form package.module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name}: {exc}") from None
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ConfigError(f"{module_name} has no attribute {attribute}")
        value = getattr(value, part)
    return value


def register_service_locally(gateway: Gateway, service: Service) -> None:
    """Register every function of ``service`` to run on this gateway node."""
    for handler in service.handlers.values():
        options = {k: v for k, v in handler.spec.to_wire().items() if k not in _NOT_OPTIONS}
        gateway.register_local(service.name, handler.spec.request_type, handler.function, **options)


def install(gateway: Gateway, target: str) -> None:
    """Load ``target`` and register its functions; raise :class:`ConfigError` on any mistake."""
    value = import_target(target)
    if isinstance(value, Service):
        register_service_locally(gateway, value)
        return
    if not callable(value):
        raise ConfigError(f"{target} is neither a Service nor a register(gateway) function")
    if inspect.iscoroutinefunction(value):
        raise ConfigError(f"{target} must be a plain function: register(gateway) -> None")
    value(gateway)
