"""The pure gateway protocol shared by gateway nodes and service nodes.

Argument types and their validation, configuration options, error codes, the call context and
the Redis wire format. Nothing here does I/O.
"""

from relaygate.protocol.gateway.argtypes import (
    ArgError,
    ArgSpec,
    SpecError,
    parse_spec,
    parse_specs,
    validate_args,
)
from relaygate.protocol.gateway.codes import ServiceError, can_retry, is_valid_code
from relaygate.protocol.gateway.context import CallContext
from relaygate.protocol.gateway.functions import FunctionKey, FunctionSpec, key_from_text, key_text
from relaygate.protocol.gateway.options import (
    ConfigError,
    NodeMode,
    PermissionRule,
    RateLimit,
    RetryPolicy,
    parse_rate_limits,
)
from relaygate.protocol.gateway.semver import SemVer, is_semver, parse_semver

__all__ = [
    "ArgError",
    "ArgSpec",
    "CallContext",
    "ConfigError",
    "FunctionKey",
    "FunctionSpec",
    "NodeMode",
    "PermissionRule",
    "RateLimit",
    "RetryPolicy",
    "SemVer",
    "ServiceError",
    "SpecError",
    "can_retry",
    "is_semver",
    "is_valid_code",
    "key_from_text",
    "key_text",
    "parse_rate_limits",
    "parse_semver",
    "parse_spec",
    "parse_specs",
    "validate_args",
]
