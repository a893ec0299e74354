"""The resource layer: every API route answers with the decision table of ``http-api.md``.

A router module declares resources on a :class:`ResourceGroup`::

    group = ResourceGroup(prefix="/api/v1", tag="products")
    item = group.resource("/products/{id}", ids=("id",), load=load_product, representation=PRODUCT)

    @item.put(auth="admin", body=ProductIn)
    async def replace(call: Call) -> Product: ...

and :func:`install_resources` turns each path into one Starlette route that runs the table in
order (501, 405, 413, 401, 403, 429, 406, OPTIONS, 404, 412/304, 415, 400, 422, then the handler)
as plain ASGI code: per-route data is computed at startup, a request costs a header scan, a dict
lookup per decision and one ``send`` per message.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel, ValidationError
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, NoMatchFound, Route, WebSocketRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate.accounts import Principal
from relaygate.telemetry.logging import user_id_var
from relaygate.telemetry.metrics import RATE_LIMIT_REJECTIONS
from relaygate.web.conditional import Validators, evaluate_preconditions, media_type_of, negotiate
from relaygate.web.problems import KNOWN_METHODS, PROBLEM_JSON, Problem, error_map, outage_problem

log = logging.getLogger("relaygate.http")

JSON_TYPE = "application/json"
MERGE_PATCH_TYPE = "application/merge-patch+json"
MAX_BODY = 1024 * 1024
MAX_ID = 2**31 - 1
"""Path ids are database integers: anything else cannot name a resource (``404``)."""

_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE", "QUERY"})
_PRECONDITIONS = frozenset({"if-match", "if-unmodified-since", "if-none-match", "if-modified-since"})


Auth = Literal["user", "admin"] | None
Cache = Literal["public", "private"]
Handler = Callable[["Call"], Awaitable[Any]]
Hook = Callable[["Call"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Representation:
    """How one entity looks on the wire: its JSON, validators, cache policy and schema (OpenAPI)."""

    schema: type[BaseModel]
    render: Callable[[Any], dict[str, Any]]
    validators: Callable[[Any], Validators] | None = None
    cache: Cache = "public"
    memo: int = 0
    """Keep the encoded answer (body, validators, headers) of up to this many entities: for a
    resource whose ``load`` returns immutable, hashable values, so that equal values are the same
    state. A ``GET`` that answers the loaded entity then costs a dict lookup instead of rendering,
    encoding and formatting validators; any change to the entity makes a different key, so a
    stored answer is never stale. ``0``: render every time."""

    @property
    def cache_control(self) -> str:
        return "no-cache" if self.cache == "public" else "private, no-cache"


@dataclass(slots=True)
class Page:
    """One page of a collection; ``next`` is the opaque cursor of the following page."""

    items: Sequence[Any]
    next: str | None = None


@dataclass(slots=True)
class Reply:
    """An explicit answer for handlers that do not return an entity (``json`` is sent as is)."""

    status: int = 200
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    media_type: str = JSON_TYPE


class Call:
    """What a handler sees of its request: node, path params, principal, validated input, entity."""

    __slots__ = ("body", "entity", "headers", "method", "node", "params", "principal", "query", "scope")

    def __init__(self, scope: Scope, method: str, headers: dict[str, str], node: Any = None) -> None:
        self.scope = scope
        self.method = method
        self.headers = headers
        self.node: Any = scope["app"].state.relaygate if node is None else node
        self.params: dict[str, Any] = {}
        self.principal: Principal | None = None
        self.query: Any = None
        self.body: Any = None
        self.entity: Any = None

    @property
    def client_host(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise Problem(401, "Authentication required.", headers={"WWW-Authenticate": "Bearer"})
        return self.principal


@dataclass(slots=True)
class Operation:
    """One method on one resource, as declared by its decorator."""

    method: str
    handler: Handler
    auth: Auth = None
    authorize: Callable[[Call], Awaitable[bool]] | None = None
    """Step 5 (``403``): sees the principal and ``call.params`` (an id that does not parse is absent)."""
    rate_limit: Callable[[Call], Awaitable[float | None]] | None = None
    body: type[BaseModel] | None = None
    merge_patch: bool = False
    query: type[BaseModel] | None = None
    representation: Representation | None = None
    page: Representation | None = None
    status: int = 200
    location: Callable[[Any], str] | None = None
    provides: tuple[str, ...] = (JSON_TYPE,)
    summary: str = ""
    description: str = ""
    errors: dict[int, str] = field(default_factory=dict)
    """Extra error statuses the handler itself raises, with why (for OpenAPI)."""
    response_schema: type[BaseModel] | None = None
    """For handlers returning a :class:`Reply` with JSON: its schema (for OpenAPI)."""
    other_statuses: dict[int, str] = field(default_factory=dict)
    """Further success statuses answered with the same representation, with when (for OpenAPI)."""
    loads_itself: bool = False
    """The handler finds the resource in the same statement as its write and raises ``404`` when it
    is missing. When neither a precondition nor the body can answer before step 9, the layer then
    skips ``load`` (one round trip less); otherwise it loads first as usual, so the order of the
    table holds either way."""

    @property
    def accepts(self) -> tuple[str, ...]:
        return (MERGE_PATCH_TYPE, JSON_TYPE) if self.merge_patch else (JSON_TYPE,)


class Resource:
    """One path template and its operations; the layer supplies HEAD and OPTIONS."""

    def __init__(
        self,
        path: str,
        *,
        ids: Sequence[str] = (),
        load: Hook | None = None,
        representation: Representation | None = None,
        tag: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        self.path = path
        self.ids = tuple(ids)
        self.load = load
        self.representation = representation
        self.tag = tag
        self.include_in_schema = include_in_schema
        self.operations: dict[str, Operation] = {}

    def operation(self, method: str, **options: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if method in self.operations:
                raise ValueError(f"{method} {self.path} is declared twice")
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"{method} {self.path}: the handler must be async")
            options.setdefault("representation", self.representation if self.load is not None else None)
            operation = Operation(method, handler, **options)
            if operation.loads_itself and (operation.body is None or operation.merge_patch):
                raise ValueError(
                    f"{method} {self.path}: loads_itself needs a JSON body that is not a merge patch"
                )
            self.operations[method] = operation
            return handler

        return register

    def get(self, **options: Any) -> Callable[[Handler], Handler]:
        return self.operation("GET", **options)

    def post(self, **options: Any) -> Callable[[Handler], Handler]:
        return self.operation("POST", **options)

    def put(self, **options: Any) -> Callable[[Handler], Handler]:
        return self.operation("PUT", **options)

    def patch(self, **options: Any) -> Callable[[Handler], Handler]:
        return self.operation("PATCH", merge_patch=True, **options)

    def delete(self, **options: Any) -> Callable[[Handler], Handler]:
        return self.operation("DELETE", status=204, representation=None, **options)


class ResourceGroup:
    """The resources of one router module (``relaygate.web.routers.<group>``)."""

    def __init__(self, *, prefix: str = "", tag: str | None = None, include_in_schema: bool = True) -> None:
        self.prefix = prefix
        self.tag = tag
        self.include_in_schema = include_in_schema
        self.resources: list[Resource] = []

    def resource(
        self,
        path: str,
        *,
        ids: Sequence[str] = (),
        load: Hook | None = None,
        representation: Representation | None = None,
    ) -> Resource:
        resource = Resource(
            self.prefix + path,
            ids=ids,
            load=load,
            representation=representation,
            tag=self.tag,
            include_in_schema=self.include_in_schema,
        )
        self.resources.append(resource)
        return resource


# --- responses -------------------------------------------------------------------------------


class _Answer(Exception):
    """Stops the decision flow with a finished response."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body


def _header(name: str, value: str) -> tuple[bytes, bytes]:
    return name.encode("latin-1"), value.encode("latin-1")


def _problem(problem: Problem) -> _Answer:
    body = problem.body()
    headers = [_header(name, value) for name, value in problem.headers.items()]
    headers.append((b"content-type", PROBLEM_JSON.encode()))
    return _Answer(problem.status, headers, body)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)


def content_etag(body: bytes) -> str:
    """A strong tag for a representation without stored validators: a digest of its bytes."""
    digest = hashlib.blake2b(body, digest_size=12).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def _read_body(receive: Receive, declared: int | None) -> bytes:
    if declared is not None and declared > MAX_BODY:
        raise _problem(Problem(413, "The request body is larger than 1 MiB."))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Answer(499, [])
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _problem(Problem(413, "The request body is larger than 1 MiB."))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _integral(value: Any) -> Any:
    """JSON has one number type: ``3.0`` is the integer 3 (as JSON Schema says); ``"3"`` stays a string."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: apply a JSON merge patch (``null`` removes a member)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass(frozen=True, slots=True)
class _Encoded:
    """An entity's answer as sent: its validators, response headers and body."""

    validators: Validators | None
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def _encode(representation: Representation, entity: Any) -> _Encoded:
    body = _dumps({"data": representation.render(entity)})
    validators = representation.validators(entity) if representation.validators is not None else None
    headers = _validator_headers(validators, representation)
    headers.append((b"content-type", JSON_TYPE.encode()))
    return _Encoded(validators, tuple(headers), body)


# --- the route -------------------------------------------------------------------------------


class ResourceRoute(BaseRoute):
    """All operations declared for one path, dispatched by the decision table."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        first = resources[0]
        for other in resources[1:]:
            if (other.ids, other.load, other.representation) != (first.ids, first.load, first.representation):
                raise ValueError(f"resources on {first.path} disagree on ids, loader or representation")
        self.path = first.path
        self.resources = list(resources)
        self.ids = first.ids
        self.load = first.load
        self.representation = first.representation
        self.include_in_schema = any(resource.include_in_schema for resource in resources)
        self.name = first.path
        self.operations: dict[str, Operation] = {}
        for resource in resources:
            for method, operation in resource.operations.items():
                if method in self.operations:
                    raise ValueError(f"{method} {self.path} is declared twice")
                self.operations[method] = operation
        if "GET" in self.operations:
            self.operations["HEAD"] = self.operations["GET"]
        self.methods = set(self.operations) | {"OPTIONS"}
        self.allow = ", ".join(method for method in _METHOD_ORDER if method in self.methods)
        self.path_regex, self.path_format, self.param_convertors = compile_path(self.path)
        options: list[tuple[bytes, bytes]] = [_header("allow", self.allow)]
        if "PATCH" in self.operations:
            options.append(_header("accept-patch", ", ".join(self.operations["PATCH"].accepts)))
        if "POST" in self.operations and self.operations["POST"].body is not None:
            options.append(_header("accept-post", ", ".join(self.operations["POST"].accepts)))
        self.options_headers = options
        self.served: tuple[Any, Any] | None = None
        """The app last served and its node (``app.state.relaygate``, looked up once per app)."""
        self.encoded: dict[Any, _Encoded] = {}
        """Entity → its encoded answer, when the representation asks for a memo (``memo``)."""

    def _encoded(self, representation: Representation, entity: Any) -> _Encoded:
        """The entity's encoded answer, from the memo when its representation keeps one."""
        if not representation.memo:
            return _encode(representation, entity)
        memo = self.encoded
        try:
            encoded = memo.get(entity)
        except TypeError:  # not hashable after all: rendered every time rather than failing
            return _encode(representation, entity)
        if encoded is None:
            encoded = _encode(representation, entity)
            if len(memo) >= representation.memo:
                memo.clear()
            memo[entity] = encoded
        return encoded

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        match = self.path_regex.match(get_route_path(scope))
        if match is None:
            return Match.NONE, {}
        return Match.FULL, {"route": self, "path_params": match.groupdict()}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            status, response_headers, body = await self._decide(scope, receive, method, headers)
        except _Answer as answer:
            status, response_headers, body = answer.status, answer.headers, answer.body
        except Problem as problem:
            raised = _problem(problem)
            status, response_headers, body = raised.status, raised.headers, raised.body
        except Exception as exc:
            outage = outage_problem(exc, method, self.path)
            if outage is None:
                log.exception("unhandled error in %s %s", method, self.path)
            failure = _problem(outage or Problem(500, "The server could not answer this request."))
            status, response_headers, body = failure.status, failure.headers, failure.body
        if status == 499:  # the client went away before sending its body
            return
        if (status != 304 and status != 204) or body:
            response_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    async def _decide(
        self, scope: Scope, receive: Receive, method: str, headers: dict[str, str]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        # 1 and 2: known method, defined for this path
        if method not in KNOWN_METHODS:
            raise _problem(Problem(501, f"{method} is not a method this server implements."))
        operation = self.operations.get(method)
        if operation is None and method != "OPTIONS":
            raise _problem(Problem(405, f"{method} is not allowed here.", headers={"Allow": self.allow}))
        # 3: body size (read now, so that chunked bodies are limited before anything else)
        declared = headers.get("content-length")
        length = int(declared) if declared is not None and declared.isascii() and declared.isdigit() else None
        raw = b""
        if operation is not None and operation.body is not None and method in _BODY_METHODS:
            raw = await _read_body(receive, length)
        elif length is not None and length > MAX_BODY:
            raise _problem(Problem(413, "The request body is larger than 1 MiB."))
        app = scope["app"]
        served = self.served
        if served is None or served[0] is not app:
            served = self.served = (app, app.state.relaygate)
        call = Call(scope, method, headers, served[1])
        ids_name_something = self._path_params(call, scope)
        if operation is not None:
            # 4, 5, 6: authentication, authorization, rate limit
            if operation.auth is not None:
                await self._authenticate(call, operation)
            if operation.authorize is not None and not await operation.authorize(call):
                raise _problem(Problem(403, "You are not allowed to do this."))
            if operation.rate_limit is not None:
                retry_after = await operation.rate_limit(call)
                if retry_after is not None:
                    RATE_LIMIT_REJECTIONS.labels("http").inc()
                    raise _problem(
                        Problem(
                            429,
                            "Too many requests.",
                            headers={"Retry-After": str(max(1, round(retry_after)))},
                        )
                    )
        # 7: content negotiation
        accept = headers.get("accept")
        provides = operation.provides if operation is not None else (JSON_TYPE,)
        media_type = negotiate(accept, provides) if accept else provides[0]
        if media_type is None:
            raise _problem(Problem(406, f"This resource is only available as {', '.join(provides)}."))
        # 8: OPTIONS
        if operation is None:
            return 204, list(self.options_headers), b""
        # 9: existence (ids that are not integers name nothing)
        if not ids_name_something:
            raise _problem(Problem(404, "No resource at this address."))
        representation = self.representation
        if operation.loads_itself and _PRECONDITIONS.isdisjoint(headers):
            body = self._acceptable_body(operation, call, headers, raw)
            if body is not None:
                call.body = body
                if operation.query is not None:
                    call.query = self._parse_query(operation.query, scope)
                return self._respond(call, operation, await operation.handler(call), headers)
        if self.load is not None:
            call.entity = await self.load(call)
            if call.entity is None:
                raise _problem(Problem(404, "No resource at this address."))
        # 10: preconditions (validators are computed only when a precondition asks for them)
        if (self.load is not None or method not in ("GET", "HEAD")) and not _PRECONDITIONS.isdisjoint(
            headers
        ):
            validators = None
            if self.load is not None and representation is not None and representation.validators is not None:
                validators = (
                    self._encoded(representation, call.entity).validators
                    if representation.memo
                    else representation.validators(call.entity)
                )
            self._check_preconditions(method, validators, representation, headers)
        # 11, 12, 13: the request body and the query
        if operation.query is not None:
            call.query = self._parse_query(operation.query, scope)
        if operation.body is not None:
            call.body = self._parse_body(operation, call, headers, raw)
        result = await operation.handler(call)
        return self._respond(call, operation, result, headers)

    def _path_params(self, call: Call, scope: Scope) -> bool:
        """Fill ``call.params`` before authorization (so ``authorize`` can compare ids); an id that does
        not parse as an integer is left out, and ``False`` says the request ends ``404`` at step 9."""
        path_params: dict[str, str] = scope.get("path_params", {})
        params = call.params
        valid = True
        for name, value in path_params.items():
            if name not in self.ids:
                params[name] = value
            elif len(value) <= 10 and value.isascii() and value.isdigit() and int(value) <= MAX_ID:
                params[name] = int(value)  # 1 to 10 ASCII digits
            else:
                valid = False
        if not valid:
            return False
        for name in self.ids:
            if name not in params:
                return False
        return True

    async def _authenticate(self, call: Call, operation: Operation) -> None:
        authorization = call.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        principal = None
        if scheme.lower() == "bearer" and token:
            principal = await call.node.accounts.authenticate_token(token)
        if principal is None:
            detail = "A valid bearer token is required." if authorization else "Authentication required."
            raise _problem(Problem(401, detail, headers={"WWW-Authenticate": "Bearer"}))
        call.principal = principal
        user_id_var.set(principal.user_id)
        if operation.auth == "admin" and principal.role != "admin":
            raise _problem(Problem(403, "Only administrators may do this."))

    def _check_preconditions(
        self,
        method: str,
        validators: Validators | None,
        representation: Representation | None,
        headers: dict[str, str],
    ) -> None:
        if_match = headers.get("if-match")
        if_unmodified = headers.get("if-unmodified-since")
        if_none_match = headers.get("if-none-match")
        if_modified = headers.get("if-modified-since")
        if if_match is None and if_unmodified is None and if_none_match is None and if_modified is None:
            return
        outcome = evaluate_preconditions(
            method,
            validators,
            if_match=if_match,
            if_unmodified_since=if_unmodified,
            if_none_match=if_none_match,
            if_modified_since=if_modified,
        )
        if outcome == 304:
            raise _Answer(304, _validator_headers(validators, representation))
        if outcome == 412:
            raise _problem(Problem(412, "A precondition of this request does not hold."))

    def _acceptable_body(
        self, operation: Operation, call: Call, headers: dict[str, str], raw: bytes
    ) -> BaseModel | None:
        """The validated body, or ``None`` when steps 11-13 would refuse it (answered after 9)."""
        try:
            return self._parse_body(operation, call, headers, raw)
        except _Answer:
            return None

    def _parse_query(self, model: type[BaseModel], scope: Scope) -> BaseModel:
        raw = scope.get("query_string", b"").decode("latin-1")
        values = dict(parse_qsl(raw, keep_blank_values=True)) if raw else {}
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise _problem(Problem(422, "The query is invalid.", errors=error_map(exc.errors()))) from None

    def _parse_body(self, operation: Operation, call: Call, headers: dict[str, str], raw: bytes) -> BaseModel:
        assert operation.body is not None
        content_type = headers.get("content-type")
        media_type, charset = media_type_of(content_type) if content_type else ("", None)
        if media_type not in operation.accepts or charset not in (None, "utf-8"):
            accepts = ", ".join(operation.accepts)
            advertise = {"Accept-Patch": accepts} if operation.method == "PATCH" else {"Accept-Post": accepts}
            raise _problem(Problem(415, f"Send the body as {accepts}.", headers=advertise))
        try:
            document = _integral(orjson.loads(raw))
        except orjson.JSONDecodeError:
            raise _problem(Problem(400, "The body is not well-formed UTF-8 JSON.")) from None
        if not isinstance(document, dict):
            raise _problem(
                Problem(422, "The body must be a JSON object.", errors={"body": ["must be a JSON object"]})
            )
        if operation.merge_patch:
            representation = operation.representation
            assert representation is not None, "merge patch needs the resource's representation"
            fields = operation.body.model_fields
            current = {
                key: value for key, value in representation.render(call.entity).items() if key in fields
            }
            document = merge_patch(current, document)
        try:
            return operation.body.model_validate(document, strict=True)
        except ValidationError as exc:
            raise _problem(Problem(422, "The body is invalid.", errors=error_map(exc.errors()))) from None

    def _respond(
        self, call: Call, operation: Operation, result: Any, headers: dict[str, str]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if isinstance(result, Reply):
            body = (
                result.body
                if result.body is not None
                else _dumps(result.json)
                if result.json is not None
                else b""
            )
            reply_headers = [_header(name, value) for name, value in result.headers.items()]
            if body:
                reply_headers.append(_header("content-type", result.media_type))
            return result.status, reply_headers, body
        representation = operation.representation
        if operation.page is not None:
            assert isinstance(result, Page)
            return self._page(call, operation.page, result, headers)
        if representation is None or result is None:
            return 204, [], b""
        if result is call.entity and representation is self.representation:
            encoded = self._encoded(representation, result)  # the loaded entity: may be memoized
        else:
            encoded = _encode(representation, result)
        response_headers = list(encoded.headers)
        body = encoded.body
        if operation.location is not None:
            response_headers.append(_header("location", operation.location(result)))
        return operation.status, response_headers, body

    def _page(
        self, call: Call, representation: Representation, page: Page, headers: dict[str, str]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = _dumps(
            {"data": [representation.render(item) for item in page.items], "meta": {"next": page.next}}
        )
        validators = Validators(content_etag(body))
        response_headers = _validator_headers(validators, representation)
        if page.next is not None:
            response_headers.append(_header("link", f'<{self._next_url(call, page.next)}>; rel="next"'))
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None:
            outcome = evaluate_preconditions(
                call.method,
                validators,
                if_match=None,
                if_unmodified_since=None,
                if_none_match=if_none_match,
                if_modified_since=None,
            )
            if outcome == 304:
                return 304, response_headers, b""
        response_headers.append((b"content-type", JSON_TYPE.encode()))
        return 200, response_headers, body

    def _next_url(self, call: Call, cursor: str) -> str:
        from urllib.parse import urlencode

        raw = call.scope.get("query_string", b"").decode("latin-1")
        query = [(key, value) for key, value in parse_qsl(raw, keep_blank_values=True) if key != "after"]
        query.append(("after", cursor))
        return f"{call.scope.get('root_path', '')}{call.scope['path']}?{urlencode(query)}"


def _validator_headers(
    validators: Validators | None, representation: Representation | None
) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    if validators is not None:
        headers.append(_header("etag", validators.etag_header))
        last_modified = validators.last_modified_header
        if last_modified is not None:
            headers.append(_header("last-modified", last_modified))
    if representation is not None:
        headers.append(_header("cache-control", representation.cache_control))
        headers.append(
            (b"vary", b"Accept, Authorization" if representation.cache == "private" else b"Accept")
        )
    return headers


def install_resources(app: Any, groups: Iterable[ResourceGroup]) -> None:
    """Add the groups' routes to a FastAPI/Starlette app (after its own routes), and put
    :class:`ResourceDispatch` in front of the framework's middleware stack."""
    app.router.routes.extend(build_routes(groups))
    _remember_telemetry_check(app)
    build_framework_stack = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        resources: ASGIApp = _handle_matched
        for cls, args, kwargs in reversed(app.user_middleware):
            resources = cls(resources, *args, **kwargs)
        return ResourceDispatch(build_framework_stack(), resources, list(app.router.routes))

    app.build_middleware_stack = build_middleware_stack


TELEMETRY_CHECK_SECONDS = 1.0


def _remember_telemetry_check(app: Any) -> None:
    """FastAPI asks, for every request, whether its native OpenTelemetry instrumentation is on:
    it reads the three global OpenTelemetry providers (and ``os.environ``), ~20 µs, a tenth of a
    ``GET``. Providers are configured at startup; the answer is remembered for a second, so one
    configured later is seen within a second."""
    telemetry = getattr(app, "_native_telemetry", None)
    check = getattr(telemetry, "enabled", None)
    if telemetry is None or not callable(check):
        return  # a Starlette app, or a FastAPI without native telemetry
    answer = False
    until = 0.0

    def enabled() -> bool:
        nonlocal answer, until
        now = time.monotonic()
        if now >= until:
            answer, until = bool(check()), now + TELEMETRY_CHECK_SECONDS
        return answer

    telemetry.enabled = enabled


async def _handle_matched(scope: Scope, receive: Receive, send: Send) -> None:
    route: ResourceRoute = scope["route"]
    await route.handle(scope, receive, send)


class ResourceDispatch:
    """Sends a request whose route is a :class:`ResourceRoute` to it through the app's own
    middleware (request ids, metrics, CORS) and nothing else.

    A resource route answers every outcome itself (problem+json included), so the framework's
    server-error, telemetry, body-limit and exception wrappers and its router's second scan of
    the routes only cost time there. ``routes`` are the app's routes in order: the first full
    match wins, as in the router, and a request that an earlier framework route may take goes
    to the framework stack unchanged (decided from the route's path where it is known, by asking
    the route otherwise).
    """

    def __init__(self, framework: ASGIApp, resources: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.framework = framework
        self.resources = resources
        self.entries: list[tuple[str, bool, BaseRoute | None]] = []
        """``(pattern, exact, route)``: a resource route (``route``, ``pattern`` its static
        prefix), a framework route known by its path (``route`` None: ``pattern`` is the path when
        ``exact``, else a prefix of every path it takes), or any other route (``pattern`` "")."""
        for route in routes:
            self.entries.extend(_entries(route, ""))
        self.decisions: dict[str, tuple[ResourceRoute, dict[str, str]] | None] = {}
        """Path → the resource route taking it and its path parameters (``None``: the framework's),
        for paths decided by their text alone; at most :data:`DISPATCH_MEMORY` paths are kept."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = get_route_path(scope)
            decision = self.decisions.get(path, _UNDECIDED)
            if decision is _UNDECIDED:
                decision = self._decide(scope, path)
            if decision is not None:
                route, params = decision
                scope["route"] = route
                scope["path_params"] = dict(params)
                await self.resources(scope, receive, send)
                return
        await self.framework(scope, receive, send)

    def _decide(self, scope: Scope, path: str) -> tuple[ResourceRoute, dict[str, str]] | None:
        """The first full match among the routes, as the router finds it; remembered when only
        paths decided it (a route of unknown kind may match on more than the path)."""
        decision: tuple[ResourceRoute, dict[str, str]] | None = None
        by_path = True
        for pattern, exact, route in self.entries:
            if route is None:
                if path == pattern if exact else path.startswith(pattern):
                    break  # a framework route may take it
                continue
            if not path.startswith(pattern):
                continue
            by_path = by_path and isinstance(route, ResourceRoute)
            match, child = route.matches(scope)
            if match is Match.FULL:
                if isinstance(route, ResourceRoute):
                    decision = (route, child["path_params"])
                break
        if by_path:
            if len(self.decisions) >= DISPATCH_MEMORY:
                self.decisions.clear()
            self.decisions[path] = decision
        return decision


DISPATCH_MEMORY = 4096
_UNDECIDED: Any = object()


def _entries(route: BaseRoute, prefix: str) -> list[tuple[str, bool, BaseRoute | None]]:
    if isinstance(route, ResourceRoute) and not prefix:
        return [(route.path.split("{", 1)[0], False, route)]
    if isinstance(route, WebSocketRoute):
        return []  # never an HTTP request's
    path = getattr(route, "path", None)
    if isinstance(route, Route | Mount) and isinstance(path, str):
        full = prefix + path
        if isinstance(route, Route) and "{" not in full:
            return [(full, True, None)]
        return [(full.split("{", 1)[0], False, None)]
    included = getattr(route, "original_router", None)  # FastAPI's include_router
    context = getattr(route, "include_context", None)
    sub_routes = getattr(included, "routes", None)
    include_prefix = getattr(context, "prefix", None)
    if isinstance(sub_routes, list) and isinstance(include_prefix, str):
        return [entry for sub in sub_routes for entry in _entries(sub, prefix + include_prefix)]
    return [("", False, route)]


def build_routes(groups: Iterable[ResourceGroup]) -> list[ResourceRoute]:
    """One route per path; resources sharing a path are merged so ``Allow`` is their union."""
    by_path: dict[str, list[Resource]] = {}
    for group in groups:
        for resource in group.resources:
            by_path.setdefault(resource.path, []).append(resource)
    return [ResourceRoute(resources) for resources in by_path.values()]
