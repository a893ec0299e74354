"""The declarative part of a gateway function's configuration, as it travels through Redis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from relaygate.protocol.gateway.argtypes import ArgSpec, SpecError, Validator, compile_validator, parse_specs
from relaygate.protocol.gateway.options import (
    DEFAULT_MAX_DURATION_MS,
    DEFAULT_TIMEOUT_MS,
    ConfigError,
    NodeMode,
    PermissionRule,
    RateLimit,
    ResponseType,
    RetryPolicy,
    parse_max_duration_ms,
    parse_name,
    parse_node_mode,
    parse_nodes,
    parse_permission,
    parse_rate_limits,
    parse_response_type,
    parse_retry,
    parse_timeout_ms,
)
from relaygate.protocol.gateway.semver import is_semver

FIELDS: Final = frozenset(
    {
        "service",
        "request_type",
        "version",
        "arg_types",
        "response_type",
        "timeout_ms",
        "max_duration_ms",
        "nodes",
        "choose_node_mode",
        "check_permission",
        "retry",
        "rate_limits",
        "disabled",
    }
)

RANDOM: Final = NodeMode("random")
NO_PERMISSION: Final = PermissionRule("none")

FunctionKey = tuple[str, str, str | None]
"""(service, request_type, version) — the registry's key."""


def key_text(key: FunctionKey) -> str:
    """The key as one string (``service|request_type|version``); names never contain ``|``."""
    return f"{key[0]}|{key[1]}|{key[2] or ''}"


def key_from_text(text: str) -> FunctionKey:
    service, request_type, version = text.split("|", 2)
    return service, request_type, version or None


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """Every declarative field of a function with the spec's defaults; build with :meth:`parse`."""

    service: str
    request_type: str
    version: str | None = None
    arg_types: Mapping[str, ArgSpec] = field(default_factory=dict)
    response_type: ResponseType = "sync"
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_duration_ms: int = DEFAULT_MAX_DURATION_MS
    nodes: str | tuple[str, ...] = "service"
    choose_node_mode: NodeMode = RANDOM
    check_permission: PermissionRule = NO_PERMISSION
    retry: RetryPolicy | None = None
    rate_limits: tuple[RateLimit, ...] = ()
    disabled: bool = False
    validate_args: Validator = field(init=False, repr=False, compare=False)
    """``validate_args(args) -> (values, errors)`` for this function, compiled once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "validate_args", compile_validator(self.arg_types))

    @property
    def key(self) -> FunctionKey:
        return (self.service, self.request_type, self.version)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> FunctionSpec:
        """Validate a config dict (missing fields take their defaults); raise :class:`ConfigError`."""
        unknown = sorted(set(raw) - FIELDS)
        if unknown:
            raise ConfigError(f"unknown function option(s): {', '.join(unknown)}")
        version = raw.get("version")
        if version is not None and not is_semver(version):
            raise ConfigError(f"version must be a semantic version or null, got {version!r}")
        try:
            arg_types = parse_specs(raw.get("arg_types"))
        except SpecError as exc:
            raise ConfigError(str(exc)) from None
        disabled = raw.get("disabled", False)
        if not isinstance(disabled, bool):
            raise ConfigError("disabled must be a boolean")
        spec = cls(
            service=parse_name("service", raw.get("service")),
            request_type=parse_name("request_type", raw.get("request_type")),
            version=version,
            arg_types=arg_types,
            response_type=parse_response_type(raw.get("response_type", "sync")),
            timeout_ms=parse_timeout_ms(raw.get("timeout_ms", DEFAULT_TIMEOUT_MS)),
            max_duration_ms=parse_max_duration_ms(raw.get("max_duration_ms", DEFAULT_MAX_DURATION_MS)),
            nodes=parse_nodes(raw.get("nodes", "service")),
            choose_node_mode=parse_node_mode(raw.get("choose_node_mode", "random")),
            check_permission=parse_permission(raw.get("check_permission", False)),
            retry=parse_retry(raw.get("retry")),
            rate_limits=parse_rate_limits(raw.get("rate_limits")),
            disabled=disabled,
        )
        spec.check_args_referenced()
        return spec

    def check_args_referenced(self) -> None:
        """Options that name an argument must name a declared one."""
        named = [self.choose_node_mode.arg] if self.choose_node_mode.arg else []
        if self.check_permission.kind == "arg":
            named.append(self.check_permission.names[0])
        named += [limit.key[4:] for limit in self.rate_limits if limit.key.startswith("arg:")]
        for name in named:
            if name not in self.arg_types:
                raise ConfigError(f"option refers to undeclared argument {name!r}")

    def to_wire(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "request_type": self.request_type,
            "version": self.version,
            "arg_types": {name: spec.to_wire() for name, spec in self.arg_types.items()},
            "response_type": self.response_type,
            "timeout_ms": self.timeout_ms,
            "max_duration_ms": self.max_duration_ms,
            "nodes": self.nodes if isinstance(self.nodes, str) else list(self.nodes),
            "choose_node_mode": self.choose_node_mode.to_wire(),
            "check_permission": self.check_permission.to_wire(),
            "retry": self.retry.to_wire() if self.retry else None,
            "rate_limits": [limit.to_wire() for limit in self.rate_limits],
            "disabled": self.disabled,
        }
