"""The OpenAPI 3.1 document, built from the resource declarations (so it lists what the layer does).

Each operation lists its success response with its headers, ``304`` where conditional GET applies,
and every error the decision table can produce for it as ``application/problem+json``. Routes not
yet on the resource layer are taken from FastAPI's own generator and merged in.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from relaygate.web.introspect import flatten_routes
from relaygate.web.problems import PROBLEM_JSON, title_of
from relaygate.web.resources import MAX_ID, Operation, Representation, ResourceRoute

REF = "#/components/schemas/{model}"
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}
_HEADER_SCHEMAS = {
    "ETag": "Strong entity tag of the representation",
    "Last-Modified": "HTTP date of the last change",
    "Cache-Control": "Caching policy",
    "Location": "Address of the created resource",
    "Link": 'Next page, as `<url>; rel="next"`',
    "Retry-After": "Seconds to wait",
    "WWW-Authenticate": "Bearer challenge",
    "Allow": "Methods of this path",
}

_ERROR_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After",)}
"""Headers that go with an error status a handler raises itself."""


def _header(name: str) -> dict[str, Any]:
    return {"description": _HEADER_SCHEMAS[name], "schema": {"type": "string"}}


def _problem(description: str, *headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if headers:
        response["headers"] = {name: _header(name) for name in headers}
    return response


def _patch_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of ``schema``: nothing required; ``null`` resets fields that have a default."""
    patch = copy.deepcopy(schema)
    required = set(patch.pop("required", []))
    for name, field in patch.get("properties", {}).items():
        if name not in required:
            patch["properties"][name] = {"anyOf": [field, {"type": "null"}]}
    patch["title"] = f"{schema.get('title', 'Body')}Patch"
    return patch


class _Builder:
    def __init__(self) -> None:
        self.models: set[type[BaseModel]] = set()
        self.paths: dict[str, dict[str, Any]] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        self.models.add(model)
        return {"$ref": REF.format(model=model.__name__)}

    def add(self, route: ResourceRoute) -> None:
        item: dict[str, Any] = {}
        for method, operation in route.operations.items():
            if method == "HEAD":
                continue
            item[method.lower()] = self.operation(route, operation)
        self.paths[route.path_format] = item

    def operation(self, route: ResourceRoute, operation: Operation) -> dict[str, Any]:
        tag = route.resources[0].tag
        document: dict[str, Any] = {
            "operationId": f"{operation.handler.__name__}",
            "summary": operation.summary or operation.handler.__name__.replace("_", " "),
            "responses": self.responses(route, operation),
        }
        if operation.description:
            document["description"] = operation.description
        if tag:
            document["tags"] = [tag]
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
            }
            for name in route.ids
        ]
        if operation.query is not None:
            schema = operation.query.model_json_schema(ref_template=REF)
            for name, field in schema.get("properties", {}).items():
                field = {key: value for key, value in field.items() if key != "title"}
                parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": field}
                if "description" in field:
                    parameter["description"] = field.pop("description")
                parameters.append(parameter)
        if parameters:
            document["parameters"] = parameters
        if operation.body is not None:
            if operation.merge_patch:
                self.models.add(operation.body)
                schema = _patch_schema(operation.body.model_json_schema(ref_template=REF))
            else:
                schema = self.ref(operation.body)
            document["requestBody"] = {
                "required": True,
                "content": {media_type: {"schema": schema} for media_type in operation.accepts},
            }
        if operation.auth is not None:
            document["security"] = [{"bearer": []}]
        return document

    def envelope(self, representation: Representation, *, page: bool) -> dict[str, Any]:
        data = self.ref(representation.schema)
        if not page:
            return {"type": "object", "required": ["data"], "properties": {"data": data}}
        meta = {
            "type": "object",
            "required": ["next"],
            "properties": {"next": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        }
        return {
            "type": "object",
            "required": ["data", "meta"],
            "properties": {"data": {"type": "array", "items": data}, "meta": meta},
        }

    def responses(self, route: ResourceRoute, operation: Operation) -> dict[str, Any]:
        responses: dict[str, Any] = {}
        representation = operation.page or operation.representation
        media_type = operation.provides[0]
        if representation is not None:
            content = {media_type: {"schema": self.envelope(representation, page=operation.page is not None)}}
            headers = ["Cache-Control"]
            if operation.page is not None:
                headers += ["ETag", "Link"]
            elif representation.validators is not None:
                headers += ["ETag", "Last-Modified"]
            if operation.location is not None:
                headers.append("Location")
            responses[str(operation.status)] = {
                "description": title_of(operation.status),
                "content": content,
                "headers": {name: _header(name) for name in headers},
            }
            for status, description in operation.other_statuses.items():
                other_headers = [name for name in headers if name != "Location"]
                responses[str(status)] = {
                    "description": description,
                    "content": content,
                    "headers": {name: _header(name) for name in other_headers},
                }
        elif operation.status == 204 or (operation.response_schema is None and operation.method != "GET"):
            responses["204"] = {"description": "No Content"}
        else:
            schema = self.ref(operation.response_schema) if operation.response_schema else {}
            responses[str(operation.status)] = {
                "description": "OK",
                "content": {media_type: {"schema": schema}},
            }
        conditional = operation.page is not None or (
            route.load is not None and representation is not None and representation.validators is not None
        )
        if operation.method == "GET" and conditional:
            responses["304"] = {"description": "Not Modified (conditional GET)"}
        if operation.body is not None:
            responses["400"] = _problem("Malformed JSON or undecodable bytes")
        if operation.auth is not None:
            responses["401"] = _problem("Missing, malformed, expired or revoked token", "WWW-Authenticate")
        if operation.auth == "admin" or operation.authorize is not None:
            responses["403"] = _problem("Not allowed")
        if route.ids or route.load is not None:
            responses["404"] = _problem("No such resource")
        responses["406"] = _problem("Accept excludes " + media_type)
        if (route.load is not None and operation.method != "GET") or operation.method in (
            "PUT",
            "PATCH",
            "DELETE",
        ):
            responses["412"] = _problem(
                "A precondition (If-Match, If-Unmodified-Since, If-None-Match) failed"
            )
        if operation.body is not None:
            responses["413"] = _problem("Body over 1 MiB")
            accept_header = "Accept-Patch" if operation.method == "PATCH" else "Accept-Post"
            responses["415"] = _problem("Unsupported Content-Type") | {
                "headers": {
                    accept_header: {"description": "Accepted media types", "schema": {"type": "string"}}
                }
            }
        if operation.body is not None or operation.query is not None:
            responses["422"] = _problem("The body or query breaks the schema (`errors` by field)")
        if operation.rate_limit is not None:
            responses["429"] = _problem("Rate limited", "Retry-After")
        for status, description in operation.errors.items():
            responses.setdefault(str(status), _problem(description, *_ERROR_HEADERS.get(status, ())))
        responses["500"] = _problem("Unexpected server fault (no internals)")
        return dict(sorted(responses.items()))

    def schemas(self) -> dict[str, Any]:
        models = sorted(self.models, key=lambda model: model.__name__)
        _, definitions = models_json_schema(
            [
                (model, "serialization" if model.__name__.endswith("View") else "validation")
                for model in models
            ],
            ref_template=REF,
        )
        schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
        schemas["Problem"] = PROBLEM
        return schemas


def build_openapi(app: FastAPI) -> dict[str, Any]:
    builder = _Builder()
    for _, route in flatten_routes(app.routes):
        if isinstance(route, ResourceRoute) and route.include_in_schema:
            builder.add(route)
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(builder.schemas())
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    paths = document.setdefault("paths", {})
    for path, item in builder.paths.items():
        paths.setdefault(path, {}).update(item)
    document["paths"] = dict(sorted(paths.items()))
    return document
