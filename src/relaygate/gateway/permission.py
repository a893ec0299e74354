"""Permission checks, using only the caller facts from the authenticated socket."""

from __future__ import annotations

import inspect
from typing import Any

from relaygate.gateway.config import FunctionConfig
from relaygate.gateway.request import CallerContext


def _same_user(value: object, user_id: str | None) -> bool:
    if user_id is None or value is None or isinstance(value, bool):
        return False
    return isinstance(value, str | int) and str(value) == str(user_id)


async def is_allowed(config: FunctionConfig, caller: CallerContext, args: dict[str, Any]) -> bool:
    """Apply ``check_permission`` to the raw request ``args`` (permission precedes validation)."""
    if config.permission is not None:
        verdict = config.permission(caller, args)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return verdict is True
    return rule_allows(config, caller, args)


def rule_allows(config: FunctionConfig, caller: CallerContext, args: dict[str, Any]) -> bool:
    """The declarative ``check_permission`` rule (no callable): decided without awaiting."""
    rule = config.spec.check_permission
    if rule.kind == "none":
        return True
    if rule.kind == "any_authenticated":
        return caller.user_id is not None
    if rule.kind == "arg":
        return _same_user(args.get(rule.names[0]), caller.user_id)
    return not caller.roles.isdisjoint(rule.names)
