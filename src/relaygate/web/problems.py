"""RFC 9457 problem details: every error the HTTP API returns is ``application/problem+json``.

:class:`Problem` is raised by handlers (and by the resource layer); :func:`install_problem_handlers`
converts what FastAPI and Starlette raise themselves (unknown routes, their validation errors, their
405/413) into the same shape, so no error leaves the app as ``{"detail": ...}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import exc as db_errors
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"}
)

log = logging.getLogger("relaygate.http")

ErrorMap = dict[str, list[str]]


def title_of(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Problem(Exception):
    """An error answer; raise it from a handler to stop with this status and detail."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: ErrorMap | None = None,
        headers: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail or title_of(status))
        self.status = status
        self.detail = detail or title_of(status)
        self.errors = errors
        self.headers = dict(headers or {})
        self.title = title or title_of(status)

    def body(self) -> bytes:
        return problem_body(self.status, self.detail, errors=self.errors, title=self.title)

    def response(self) -> Response:
        return Response(self.body(), self.status, headers=self.headers, media_type=PROBLEM_JSON)


def problem_body(
    status: int, detail: str | None = None, *, errors: ErrorMap | None = None, title: str | None = None
) -> bytes:
    document: dict[str, Any] = {
        "type": "about:blank",
        "title": title or title_of(status),
        "status": status,
        "detail": detail or title or title_of(status),
    }
    if errors is not None:
        document["errors"] = errors
    return orjson.dumps(document)


def validation_problem(errors: ErrorMap, detail: str = "The request is invalid.") -> Problem:
    return Problem(422, detail, errors=errors)


def error_map(errors: Iterable[Mapping[str, Any]]) -> ErrorMap:
    """Pydantic errors as ``{"field.path": ["message", ...]}``; an error on the whole body is ``body``."""
    result: ErrorMap = {}
    for error in errors:
        key = ".".join(str(part) for part in error.get("loc", ())) or "body"
        message = "is not a known field" if error.get("type") == "extra_forbidden" else str(error.get("msg"))
        result.setdefault(key, []).append(message)
    return result


def _fastapi_error_map(exc: RequestValidationError) -> ErrorMap:
    result: ErrorMap = {}
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        # FastAPI prefixes locations with where the value came from: body, query, path, header.
        key = ".".join(str(part) for part in loc[1:]) or str(loc[0] if loc else "body")
        result.setdefault(key, []).append(str(error.get("msg", "is invalid")))
    return result


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status in (404, 405) and request.method not in KNOWN_METHODS:
        status, headers = 501, {}
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title_of(status) else None
    if status == 404:
        detail = "No resource at this address."
    return Problem(status, detail, headers=headers).response()


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return Problem(400, "The body is not well-formed UTF-8 JSON.").response()
    return validation_problem(_fastapi_error_map(exc)).response()


async def _problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response()


RETRY_AFTER_S = "2"


# SQLSTATE classes of a database that cannot serve now: connection exceptions (08) and operator
# intervention (57P: shutting down, crash recovery, starting up).
_OUTAGE_SQLSTATES = ("08", "57P")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a backing service (database, Redis) cannot be reached right now, as
    opposed to a bug: only these become ``503``; anything else stays a logged ``500``."""
    if isinstance(exc, RedisError):
        return not isinstance(exc, ResponseError) or str(exc).startswith(
            ("LOADING", "READONLY", "MASTERDOWN")
        )
    if isinstance(exc, db_errors.DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, db_errors.OperationalError | db_errors.InterfaceError
        ):
            return True
        return str(getattr(exc.orig, "sqlstate", None) or "").startswith(_OUTAGE_SQLSTATES)
    if str(getattr(exc, "sqlstate", None) or "").startswith(_OUTAGE_SQLSTATES):  # a driver error, unwrapped
        return True
    return isinstance(exc, db_errors.TimeoutError | ConnectionError | TimeoutError)


def outage_problem(exc: BaseException, method: str, path: str) -> Problem | None:
    """The ``503`` for an outage (logged as one line, no traceback), or ``None`` for a bug."""
    if not is_outage(exc):
        return None
    log.warning("%s %s: backing service unavailable (%s: %s)", method, path, type(exc).__name__, exc)
    detail = "A service this request needs is unavailable; retry shortly."
    return Problem(503, detail, headers={"Retry-After": RETRY_AFTER_S})


async def _outage(request: Request, exc: Exception) -> Response:
    problem = outage_problem(exc, request.method, request.url.path)
    if problem is None:
        raise exc
    return problem.response()


def install_problem_handlers(app: FastAPI) -> None:
    """Route FastAPI's and Starlette's own errors through problem+json.

    A database or Redis outage is answered ``503`` with ``Retry-After`` (:func:`is_outage`).
    Other unexpected exceptions are answered by :class:`relaygate.web.middleware.RequestContextMiddleware`,
    which still knows the request id when it logs them.
    """
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Problem, _problem)
    for outage in (RedisError, db_errors.DBAPIError, db_errors.TimeoutError, ConnectionError, TimeoutError):
        app.add_exception_handler(outage, _outage)
