"""Version resolution: which registered version of a function a request gets."""

from __future__ import annotations

from collections.abc import Mapping

from relaygate.gateway.response import GatewayError
from relaygate.protocol.gateway import codes
from relaygate.protocol.gateway.semver import parse_semver


def resolve_version(versions: Mapping[str | None, bool], requested: str | None) -> str | None:
    """Pick a version from ``{version: enabled}``.

    Without ``requested``: the highest enabled semver, else the enabled unversioned one.
    With it: exactly that version. Raises ``not_found`` or ``disabled``.
    """
    if not versions:
        raise GatewayError(codes.NOT_FOUND, "no such function")
    if requested is not None:
        if requested not in versions:
            raise GatewayError(codes.NOT_FOUND, f"no version {requested} of this function")
        if not versions[requested]:
            raise GatewayError(codes.DISABLED, f"version {requested} of this function is disabled")
        return requested
    enabled = [v for v, on in versions.items() if on and v is not None]
    if enabled:
        return max(enabled, key=lambda v: parse_semver(v).precedence())
    if versions.get(None):
        return None
    raise GatewayError(codes.DISABLED, "every version of this function is disabled")
