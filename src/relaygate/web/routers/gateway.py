"""``/api/v1/gateway``: registry and rate-limit administration (admins only).

Function paths name a version as ``{service}/{request_type}/{version}``; the unversioned
function (``version: null``) is written ``_`` (``/gateway/functions/inventory/export/_/disable``).
In cluster mode every change goes through Redis and reaches every gateway node at once.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, RootModel

from relaygate.gateway import GatewayAdmin, GatewayError, LimiterConfig
from relaygate.protocol.gateway.functions import FunctionKey
from relaygate.protocol.gateway.options import ConfigError
from relaygate.protocol.gateway.semver import is_semver
from relaygate.web.conditional import Validators
from relaygate.web.problems import Problem
from relaygate.web.resources import Call, Representation, ResourceGroup, content_etag

audit = logging.getLogger("relaygate.audit")
PREFIX: Final = "/api/v1"
UNVERSIONED: Final = "_"
"""The ``{version}`` path segment of a function registered without a version."""


class NodeView(BaseModel):
    name: str
    alive: bool
    draining: bool
    last_heartbeat: int | None = Field(description="Redis time of the last heartbeat, ms since the epoch")
    config_version: str


class ServiceView(BaseModel):
    service: str
    config_version: str | None
    nodes: list[NodeView]


class ServicesView(RootModel[list[ServiceView]]):
    pass


class FunctionVersionView(BaseModel):
    version: str | None
    enabled: bool
    response_type: str
    nodes: str | list[str]


class FunctionsView(RootModel[dict[str, dict[str, list[FunctionVersionView]]]]):
    """``{service: {request_type: [versions]}}``."""


class RateLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    key: str = Field(
        description="user_id, device_id, ip_address or arg:<name>",
        pattern=r"^(user_id|device_id|ip_address|arg:[A-Za-z_][A-Za-z0-9_]*)$",
    )
    max_requests: int = Field(ge=1, le=10_000_000)
    window_ms: int = Field(ge=1, le=86_400_000)


class RateLimitsIn(BaseModel):
    """The whole limiter configuration: global limits (every request) and the store's failure mode."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    global_limits: list[RateLimitIn] = Field(default_factory=list, alias="global", max_length=100)
    fail_open: bool = True
    timeout_ms: int = Field(default=250, ge=1, le=10_000)


class RateLimitsView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    global_limits: list[RateLimitIn] = Field(alias="global")
    fail_open: bool
    timeout_ms: int


def _admin(call: Call) -> GatewayAdmin:
    admin: GatewayAdmin = call.node.gateway_admin
    return admin


def _as_is(value: Any) -> Any:
    return value


def _content_validators(value: Any) -> Validators:
    return Validators(content_etag(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)))


def _view(schema: type[BaseModel]) -> Representation:
    return Representation(schema=schema, render=_as_is, validators=_content_validators, cache="private")


SERVICES = _view(ServicesView)
FUNCTIONS = _view(FunctionsView)
RATE_LIMITS = _view(RateLimitsView)


def function_key(call: Call) -> FunctionKey | None:
    """The key a function path names, or None when the version segment cannot name one."""
    version: str | None = call.params["version"]
    if version == UNVERSIONED:
        version = None
    elif not is_semver(version):
        return None
    return str(call.params["service"]), str(call.params["request_type"]), version


async def load_services(call: Call) -> list[dict[str, Any]]:
    return await _admin(call).services()


async def load_functions(call: Call) -> dict[str, Any]:
    return _admin(call).functions()


async def load_rate_limits(call: Call) -> dict[str, Any]:
    return _admin(call).rate_limits().to_wire()


async def load_function(call: Call) -> FunctionKey | None:
    key = function_key(call)
    if key is None or call.node.gateway.registry.get(key) is None:
        return None
    return key


group = ResourceGroup(prefix=PREFIX, tag="gateway")
services = group.resource("/gateway/services", load=load_services, representation=SERVICES)
functions = group.resource("/gateway/functions", load=load_functions, representation=FUNCTIONS)
function = group.resource("/gateway/functions/{service}/{request_type}/{version}", load=load_function)
disable = group.resource("/gateway/functions/{service}/{request_type}/{version}/disable", load=load_function)
enable = group.resource("/gateway/functions/{service}/{request_type}/{version}/enable", load=load_function)
rate_limits = group.resource("/gateway/rate-limits", load=load_rate_limits, representation=RATE_LIMITS)

_GONE = "The function disappeared meanwhile."


@services.get(auth="admin", summary="Services with their nodes, liveness and config_version")
async def list_services(call: Call) -> Any:
    return call.entity


@functions.get(auth="admin", summary="Registered functions by service and request_type")
async def list_functions(call: Call) -> Any:
    return call.entity


async def _change(call: Call, kind: str) -> None:
    admin = _admin(call)
    change = {"disable": admin.disable, "enable": admin.enable, "delete": admin.delete}[kind]
    try:
        await change(call.entity)
    except GatewayError as exc:  # deleted by someone else between the load and now
        raise Problem(404, _GONE) from exc
    service, request_type, version = call.entity
    audit.info(
        "gateway function %s/%s/%s: %s",
        service,
        request_type,
        version or UNVERSIONED,
        kind,
        extra={"action": f"gateway.{kind}"},  # user_id and request_id come from the request context
    )


@disable.post(auth="admin", summary="Disable one function version (`_` = unversioned) on every gateway")
async def disable_function(call: Call) -> None:
    await _change(call, "disable")


@enable.post(auth="admin", summary="Enable one function version again")
async def enable_function(call: Call) -> None:
    await _change(call, "enable")


@function.delete(auth="admin", summary="Remove one function version until its service pushes a new config")
async def delete_function(call: Call) -> None:
    await _change(call, "delete")


@rate_limits.get(auth="admin", summary="The rate limiter configuration")
async def show_rate_limits(call: Call) -> Any:
    return call.entity


@rate_limits.put(auth="admin", body=RateLimitsIn, summary="Replace the rate limiter configuration")
async def replace_rate_limits(call: Call) -> Any:
    body: RateLimitsIn = call.body
    try:
        config = LimiterConfig.parse(body.model_dump(by_alias=True))
    except ConfigError as exc:
        raise Problem(422, "The body is invalid.", errors={"global": [str(exc)]}) from None
    await _admin(call).set_rate_limits(config)
    return config.to_wire()
