"""Pure ASGI middleware: request ids, access metrics and logging (no per-request objects)."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from email.utils import formatdate
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate.telemetry.logging import request_id_var, user_id_var
from relaygate.telemetry.metrics import HTTP
from relaygate.web.problems import PROBLEM_JSON, problem_body

log = logging.getLogger("relaygate.http")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
    return new_request_id()


_id_prefix = ""
_id_counter = itertools.count()


def _reseed() -> None:
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = os.urandom(8).hex(), itertools.count()


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """32 hex digits: a random prefix per process (redrawn in a forked child) and a counter.

    Unique across nodes and requests like a random id, without a ``getrandom`` system call per
    request; a request id names a request in the logs, it is no secret."""
    return f"{_id_prefix}{next(_id_counter):016x}"


def route_name(scope: Scope) -> str:
    """The matched route's template (bounded label cardinality), or ``unmatched``."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return str(path) if path else "unmatched"


_date: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """``Date`` is set here rather than by uvicorn (``date_header=False``), per response: uvicorn's
    is refreshed once a second, so it could be older than a ``Last-Modified`` written just now.
    HTTP dates have whole seconds, so the text is formatted once per second of the clock."""
    global _date
    now = time.time()
    second = int(now)
    if _date[0] != second:
        _date = (second, formatdate(second, usegmt=True).encode())
    return _date[1]


class RequestContextMiddleware:
    """Gives every request an id (``x-request-id`` in and out) and counts it by route and status.

    It is also the last line of defence: an exception escaping the app is logged here, where the
    request id is still known, and answered with a ``500`` problem that reveals nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        id_token = request_id_var.set(request_id)
        user_token = user_id_var.set(None)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(id_token)
                user_id_var.reset(user_token)
            return
        started = time.perf_counter()
        status = 500
        started_response = False
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", []), header, (b"date", _http_date())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], route_name(scope))
            if started_response:
                raise
            await _internal_error(send_with_id)
        finally:
            route = route_name(scope)
            method = scope["method"]
            elapsed = time.perf_counter() - started
            HTTP.observe(method, route, status, elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={"status": status, "duration_ms": round(elapsed * 1000, 2)},
                )
            request_id_var.reset(id_token)
            user_id_var.reset(user_token)


async def _internal_error(send: Send) -> None:
    body = problem_body(500, "The server could not answer this request.")
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
