"""problem+json errors (RFC 9457) for the accounts routes until the generic resource layer lands.

``Problem`` is raised by routes and dependencies; the handlers installed by :func:`install` turn
it, and FastAPI's request validation errors, into ``application/problem+json`` responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from relaygate.web.responses import JSON

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail or HTTPStatus(problem.status).description,
    }
    if problem.errors is not None:
        body["errors"] = dict(problem.errors)
    return JSON(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


def validation_problem(exc: RequestValidationError) -> Problem:
    """Malformed JSON is 400; a body or query that breaks the schema is 422 with ``errors``."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return Problem(400, "The request body is not valid JSON.")
        location = [str(part) for part in error.get("loc", ())]
        field = ".".join(location[1:]) or "body"
        message = "is not allowed" if error.get("type") == "extra_forbidden" else str(error.get("msg"))
        errors.setdefault(field, []).append(message)
    return Problem(422, "The request does not follow the schema.", errors=errors)


async def _problem_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def _validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_problem(exc))


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
