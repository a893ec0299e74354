"""A registered function: its declarative spec plus, for local functions, the Python callables."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from relaygate.gateway.metrics import CallStats, stats_for
from relaygate.protocol.gateway.functions import FunctionSpec
from relaygate.protocol.gateway.options import ConfigError

PermissionCheck = Callable[[Any, dict[str, Any]], "bool | Awaitable[bool]"]
"""A callable permission: ``(caller: CallerContext, raw_args) -> bool`` (or an awaitable bool)."""


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """What the executor needs to run one (service, request_type, version).

    ``spec`` holds every declarative field with the spec's defaults (see :class:`FunctionSpec`).
    ``function`` is set for local functions (``nodes: "local"``); remote functions run on
    service nodes. ``permission`` is a callable ``check_permission`` (local functions only).
    """

    spec: FunctionSpec
    function: Callable[..., Any] | None = None
    permission: PermissionCheck | None = None
    is_coroutine: bool = field(init=False, compare=False, default=False)
    """``function`` is a coroutine function (awaited on the loop, not run in a thread)."""
    eager: bool = field(init=False, compare=False, default=False)
    """A local sync coroutine function without a callable permission: the gateway may run its
    first step at once, in the push's own handling (see :mod:`relaygate.service.eager`)."""
    stats: CallStats = field(init=False, compare=False, repr=False)
    """Where its finished calls are counted (shared by the versions of one function)."""

    def __post_init__(self) -> None:
        is_coroutine = inspect.iscoroutinefunction(self.function)
        object.__setattr__(self, "is_coroutine", is_coroutine)
        eager = is_coroutine and self.spec.response_type == "sync" and self.permission is None
        object.__setattr__(self, "eager", eager)
        object.__setattr__(self, "stats", stats_for(self.spec.service, self.spec.request_type))

    @classmethod
    def build(cls, function: Callable[..., Any] | None = None, **options: Any) -> FunctionConfig:
        """Validate ``options`` (the spec's fields) and ``function``; raise :class:`ConfigError`."""
        permission = options.get("check_permission")
        if callable(permission):
            options = {**options, "check_permission": False}
        else:
            permission = None
        spec = FunctionSpec.parse(options)
        config = cls(spec, function, permission)
        config.validate()
        return config

    def validate(self) -> None:
        local = self.spec.nodes == "local"
        if local and self.function is None:
            raise ConfigError("a local function needs a callable")
        if not local and self.function is not None:
            raise ConfigError("a callable runs on this node only: use nodes='local'")
        if not local and self.permission is not None:
            raise ConfigError("a callable check_permission works for local functions only")
        if self.function is not None:
            is_stream = inspect.isasyncgenfunction(self.function)
            if (self.spec.response_type == "stream") != is_stream:
                raise ConfigError("response_type 'stream' needs an async generator function and only it")
