"""Declaring a service's functions: ``Service`` and its ``@svc.function`` decorator."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from relaygate.protocol.gateway.functions import FunctionSpec
from relaygate.protocol.gateway.options import ConfigError, parse_name

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Handler:
    spec: FunctionSpec
    function: Callable[..., Any]
    is_coroutine: bool = field(init=False, compare=False, default=False)
    """``function`` is a coroutine function (awaited on the loop, not run in a thread)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_coroutine", inspect.iscoroutinefunction(self.function))


class Service:
    """A named set of functions that a service node registers with the gateway.

    ``config_version`` says when the function set changed: a push with the version the gateway
    already has is skipped, a new one replaces the whole set. Without it a hash of the
    declarations is used, so any change of a declaration is a new version.
    """

    def __init__(self, name: str, config_version: str | None = None) -> None:
        self.name = parse_name("service", name)
        if config_version is not None and not (isinstance(config_version, str) and config_version):
            raise ConfigError("config_version must be a non-empty string")
        self._config_version = config_version
        self.handlers: dict[tuple[str, str | None], Handler] = {}

    @property
    def config_version(self) -> str:
        if self._config_version is not None:
            return self._config_version
        specs = orjson.dumps(self.wire_functions(), option=orjson.OPT_SORT_KEYS)
        return "sha-" + hashlib.sha256(specs).hexdigest()[:16]

    def function(
        self,
        name: str,
        *,
        version: str | None = None,
        args: Mapping[str, Any] | None = None,
        response_type: str = "sync",
        timeout_ms: int = 5000,
        max_duration_ms: int = 300_000,
        check_permission: str | bool = False,
        rate_limits: Sequence[Mapping[str, Any]] = (),
        retry: int | str | None = None,
        choose_node_mode: str = "random",
        nodes: str | Sequence[str] = "service",
    ) -> Callable[[F], F]:
        """Register the decorated function as ``name`` (the request_type) at ``version``.

        It is called as ``function(**args, ctx=ctx)``; for ``response_type="stream"`` it must be
        an async generator. Raises :class:`ConfigError` on a bad declaration.
        """
        if callable(check_permission):
            raise ConfigError("a service node's check_permission must be declarative (no callables)")
        if nodes == "local":
            raise ConfigError("service functions run on service nodes, not 'local'")
        spec = FunctionSpec.parse(
            {
                "service": self.name,
                "request_type": name,
                "version": version,
                "arg_types": dict(args or {}),
                "response_type": response_type,
                "timeout_ms": timeout_ms,
                "max_duration_ms": max_duration_ms,
                "nodes": nodes if isinstance(nodes, str) else list(nodes),
                "choose_node_mode": choose_node_mode,
                "check_permission": check_permission,
                "retry": retry,
                "rate_limits": [dict(limit) for limit in rate_limits],
            }
        )

        def register(function: F) -> F:
            if (response_type == "stream") != inspect.isasyncgenfunction(function):
                raise ConfigError("response_type 'stream' needs an async generator function and only it")
            if (name, version) in self.handlers:
                raise ConfigError(f"{name} version {version} is declared twice")
            self.handlers[(name, version)] = Handler(spec, function)
            return function

        return register

    def wire_functions(self) -> list[dict[str, Any]]:
        return [handler.spec.to_wire() for handler in self.handlers.values()]
