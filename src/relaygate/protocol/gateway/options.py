"""Parsing of the function configuration options that travel as text (shared by gateway and SDK).

Each parser takes the value as written in a config (Python or JSON) and returns a typed value,
or raises :class:`ConfigError` with a message naming the option.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

RESPONSE_TYPES: Final = ("sync", "async", "stream", "none")
ResponseType = Literal["sync", "async", "stream", "none"]
MIN_TIMEOUT_MS: Final = 100
MAX_TIMEOUT_MS: Final = 300_000
DEFAULT_TIMEOUT_MS: Final = 5000
DEFAULT_MAX_DURATION_MS: Final = 300_000
MAX_DURATION_LIMIT_MS: Final = 86_400_000
RATE_LIMIT_KEYS: Final = ("user_id", "device_id", "ip_address")


class ConfigError(ValueError):
    """A function, limit or service configuration is invalid."""


@dataclass(frozen=True, slots=True)
class NodeMode:
    """How a node is chosen: ``kind`` is random, round_robin, hash, hash_arg or sticky."""

    kind: Literal["random", "round_robin", "hash", "hash_arg", "sticky"]
    arg: str | None = None  # the argument (hash_arg, sticky) or None for sticky on user_id

    def to_wire(self) -> str:
        if self.kind == "hash_arg":
            return f"hash:{self.arg}"
        if self.kind == "sticky":
            return f"sticky:{self.arg or 'user_id'}"
        return self.kind


@dataclass(frozen=True, slots=True)
class PermissionRule:
    """A declarative permission: none, any_authenticated, arg (equals user id) or role (any of)."""

    kind: Literal["none", "any_authenticated", "arg", "role"]
    names: tuple[str, ...] = ()

    def to_wire(self) -> str | bool:
        if self.kind == "none":
            return False
        if self.kind == "any_authenticated":
            return "any_authenticated"
        return f"{self.kind}:{','.join(self.names)}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries after transport failures: ``any`` reselects a node, ``same_node`` or ``all_nodes``."""

    mode: Literal["any", "same_node", "all_nodes"]
    retries: int

    def to_wire(self) -> str:
        return str(self.retries) if self.mode == "any" else f"{self.mode}:{self.retries}"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``max_requests`` per sliding ``window_ms`` for each value of ``key``."""

    key: str  # user_id, device_id, ip_address or arg:<name>
    max_requests: int
    window_ms: int

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key, "max_requests": self.max_requests, "window_ms": self.window_ms}


def _int_in(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in {low}..{high}")
    return value


def _ident(name: str, value: str) -> str:
    if not value.isidentifier():
        raise ConfigError(f"{name}: {value!r} is not an argument name")
    return value


def parse_response_type(value: object) -> ResponseType:
    if value == "sync" or value == "async" or value == "stream" or value == "none":
        return value
    raise ConfigError(f"response_type must be one of {', '.join(RESPONSE_TYPES)}")


def parse_timeout_ms(value: object) -> int:
    return _int_in("timeout_ms", value, MIN_TIMEOUT_MS, MAX_TIMEOUT_MS)


def parse_max_duration_ms(value: object) -> int:
    return _int_in("max_duration_ms", value, MIN_TIMEOUT_MS, MAX_DURATION_LIMIT_MS)


def parse_nodes(value: object) -> str | tuple[str, ...]:
    """``"local"``, ``"service"`` or a non-empty list of node names."""
    if value == "local" or value == "service":
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ConfigError("nodes must be 'local', 'service' or a non-empty list of node names")


def parse_node_mode(value: object) -> NodeMode:
    if isinstance(value, NodeMode):
        return value
    if value == "random" or value == "round_robin" or value == "hash":
        return NodeMode(value)
    if isinstance(value, str) and ":" in value:
        kind, _, arg = value.partition(":")
        if kind == "hash":
            return NodeMode("hash_arg", _ident("choose_node_mode", arg))
        if kind == "sticky":
            return NodeMode("sticky", None if arg == "user_id" else _ident("choose_node_mode", arg))
    raise ConfigError(
        "choose_node_mode must be random, round_robin, hash, hash:<arg> or sticky:<arg|user_id>"
    )


def parse_permission(value: object) -> PermissionRule:
    """Parse a declarative permission; callables are handled by the gateway, not here."""
    if isinstance(value, PermissionRule):
        return value
    if value is False or value is None or value == "false":
        return PermissionRule("none")
    if value == "any_authenticated":
        return PermissionRule("any_authenticated")
    if isinstance(value, str) and value.startswith("arg:"):
        return PermissionRule("arg", (_ident("check_permission", value[4:]),))
    if isinstance(value, str) and value.startswith("role:"):
        roles = tuple(r.strip() for r in value[5:].split(",") if r.strip())
        if roles:
            return PermissionRule("role", roles)
    raise ConfigError(
        "check_permission must be false, any_authenticated, arg:<name>, role:<r1>,<r2> or a callable"
    )


def parse_retry(value: object) -> RetryPolicy | None:
    if value is None:
        return None
    if isinstance(value, RetryPolicy):
        return value
    mode = "any"
    count: object = value
    if isinstance(value, str):
        mode, sep, text = value.rpartition(":")
        mode = mode if sep else "any"
        count = int(text) if text.isdigit() else None
    if mode not in ("any", "same_node", "all_nodes"):
        raise ConfigError("retry must be n, same_node:n or all_nodes:n")
    return RetryPolicy(mode, _int_in("retry", count, 0, 10))  # type: ignore[arg-type]


def parse_rate_limit(value: object) -> RateLimit:
    if isinstance(value, RateLimit):
        return value
    if not isinstance(value, dict) or set(value) != {"key", "max_requests", "window_ms"}:
        raise ConfigError("a rate limit is an object with exactly key, max_requests and window_ms")
    key = value["key"]
    if not isinstance(key, str) or not (
        key in RATE_LIMIT_KEYS or (key.startswith("arg:") and key[4:].isidentifier())
    ):
        raise ConfigError("rate limit key must be user_id, device_id, ip_address or arg:<name>")
    return RateLimit(
        key,
        _int_in("max_requests", value["max_requests"], 1, 10_000_000),
        _int_in("window_ms", value["window_ms"], 1, 86_400_000),
    )


def parse_rate_limits(value: object) -> tuple[RateLimit, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ConfigError("rate_limits must be a list")
    return tuple(parse_rate_limit(v) for v in value)


def parse_name(field_name: str, value: object) -> str:
    """Service and request type names: 1..128 printable characters without ``|`` or whitespace."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 128
        or any(c.isspace() or c == "|" or not c.isprintable() for c in value)
    ):
        raise ConfigError(f"{field_name} must be 1..128 printable characters without spaces or '|'")
    return value
