"""Decoding a ``phoenix_gen_api`` push into a request, and the caller facts from the socket."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from relaygate.gateway.response import GatewayError
from relaygate.protocol.gateway import codes

MAX_REQUEST_BYTES: Final = 1024 * 1024
MAX_REQUEST_ID_CHARS: Final = 128
MAX_NAME_CHARS: Final = 128


@dataclass(frozen=True, slots=True)
class CallerContext:
    """Who calls, as the authenticated socket knows it; nothing here comes from the request payload.

    ``connection`` identifies the socket (per-socket concurrency and cancel scope).
    """

    user_id: str | None
    roles: frozenset[str] = frozenset()
    device_id: str | None = None
    ip_address: str | None = None
    connection: Hashable = field(default=None)
    sorted_roles: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """``roles`` in a stable order, as functions see them (``ctx.user_roles``), sorted once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sorted_roles", tuple(sorted(self.roles)))


@dataclass(slots=True)
class GatewayRequest:
    """A decoded request (one per push: not frozen, which would cost more than the decoding)."""

    request_id: str
    service: str
    request_type: str
    version: str | None
    args: dict[str, Any]
    device_id: str | None


def _text(payload: dict[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        need = "is required and must be" if required else "must be"
        raise GatewayError(codes.BAD_REQUEST, f"{name} {need} a string of 1..{limit} characters")
    return value


def request_id_of(payload: object) -> str | None:
    """The request id to answer with, even when the payload is otherwise bad."""
    if isinstance(payload, dict):
        rid = payload.get("request_id")
        if isinstance(rid, str) and len(rid) <= MAX_REQUEST_ID_CHARS:
            return rid
    return None


def decode_request(payload: object, *, max_size: int | None = None) -> GatewayRequest:
    """Check a request payload; raise a ``bad_request`` :class:`GatewayError` when it is unusable.

    ``max_size`` is a bound of the payload's encoded size when the transport knows one (its frame
    limit): within the request limit the payload need not be encoded again to be measured.
    ``user_id`` and ``user_roles`` in the payload are ignored.
    """
    if not isinstance(payload, dict):
        raise GatewayError(codes.BAD_REQUEST, "the request must be an object")
    if max_size is None or max_size > MAX_REQUEST_BYTES:
        try:
            size = len(orjson.dumps(payload))
        except TypeError:
            raise GatewayError(codes.BAD_REQUEST, "the request is not JSON") from None
        if size > MAX_REQUEST_BYTES:
            raise GatewayError(codes.BAD_REQUEST, f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    fields = valid_fields(payload)
    if fields is not None:
        return GatewayRequest(*fields)
    request_id = _text(payload, "request_id", MAX_REQUEST_ID_CHARS, required=True)
    service = _text(payload, "service", MAX_NAME_CHARS, required=True)
    request_type = _text(payload, "request_type", MAX_NAME_CHARS, required=True)
    version = _text(payload, "version", MAX_NAME_CHARS, required=False)
    device_id = _text(payload, "device_id", MAX_NAME_CHARS, required=False)
    args = payload.get("args")
    if args is None:
        args = {}
    elif not isinstance(args, dict):
        raise GatewayError(codes.BAD_REQUEST, "args must be an object")
    assert request_id is not None and service is not None and request_type is not None
    return GatewayRequest(request_id, service, request_type, version, args, device_id)


Fields = tuple[str, str, str, "str | None", dict[str, Any], "str | None"]
"""``request_id, service, request_type, version, args, device_id`` (``GatewayRequest``'s order)."""


def valid_fields(payload: dict[str, Any]) -> Fields | None:
    """The request's fields when every one is valid (the common case, one expression), else None
    (then :func:`decode_request` names the first bad one). The payload's size is not checked."""
    get = payload.get
    request_id, service, request_type = get("request_id"), get("service"), get("request_type")
    version, device_id, args = get("version"), get("device_id"), get("args")
    if (
        type(request_id) is str
        and 0 < len(request_id) <= MAX_REQUEST_ID_CHARS
        and type(service) is str
        and 0 < len(service) <= MAX_NAME_CHARS
        and type(request_type) is str
        and 0 < len(request_type) <= MAX_NAME_CHARS
        and (version is None or (type(version) is str and 0 < len(version) <= MAX_NAME_CHARS))
        and (device_id is None or (type(device_id) is str and 0 < len(device_id) <= MAX_NAME_CHARS))
    ):
        if args is None:
            args = {}
        elif type(args) is not dict:
            return None
        return request_id, service, request_type, version, args, device_id
    return None
