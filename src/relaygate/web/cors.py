"""CORS for the configured origins (``RELAYGATE_CORS_ORIGINS``), as pure ASGI middleware.

Unlike Starlette's, a preflight is answered by the route itself (the resource layer's
``OPTIONS``: ``204`` with ``Allow``); this only adds the CORS headers, so preflights and plain
``OPTIONS`` agree. A preflight to a route without ``OPTIONS`` (``405``) becomes a ``204`` too.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXPOSE = b"Authorization, ETag, Last-Modified, Link, Location, Retry-After, X-Request-Id"
ALLOW_HEADERS = b"Authorization, Content-Type, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, X-Request-Id"
DEFAULT_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


class CORSMiddleware:
    def __init__(self, app: ASGIApp, allow_origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origin.encode("latin-1") for origin in allow_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_method = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                request_method = value
        if origin is None or origin not in self.origins:
            await self.app(scope, receive, send)
            return
        preflight = scope["method"] == "OPTIONS" and request_method is not None
        allowed_origin = origin
        swallow = False

        async def send_with_cors(message: Message) -> None:
            nonlocal swallow
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not name.startswith(b"access-control-")
                ]
                headers += [(b"access-control-allow-origin", allowed_origin), (b"vary", b"Origin")]
                if preflight:
                    allow = next((value for name, value in headers if name == b"allow"), DEFAULT_METHODS)
                    headers += [
                        (b"access-control-allow-methods", allow),
                        (b"access-control-allow-headers", ALLOW_HEADERS),
                        (b"access-control-max-age", b"600"),
                    ]
                    if message["status"] in (200, 405):
                        swallow = True
                        headers = [
                            (name, value)
                            for name, value in headers
                            if name not in (b"content-type", b"content-length")
                        ]
                        message = {**message, "status": 204}
                else:
                    headers.append((b"access-control-expose-headers", EXPOSE))
                message = {**message, "headers": headers}
            elif swallow and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(scope, receive, send_with_cors)
