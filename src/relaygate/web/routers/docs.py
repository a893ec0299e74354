"""``/openapi.json`` and ``/docs``: Swagger UI served from the ``swagger-ui-bundle-v2`` package (no CDN)."""

from __future__ import annotations

import mimetypes
from functools import lru_cache
from typing import Any

from swagger_ui_bundle import swagger_ui_path

from relaygate.web.openapi import build_openapi
from relaygate.web.problems import Problem
from relaygate.web.resources import Call, Reply, ResourceGroup

group = ResourceGroup(include_in_schema=False)
STATIC = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Relaygate API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
</script>
</body>
</html>
"""


def openapi_of(call: Call) -> dict[str, Any]:
    """Built once per app, on first use (every route is installed by then)."""
    app = call.scope["app"]
    document: dict[str, Any] | None = getattr(app.state, "openapi_document", None)
    if document is None:
        document = build_openapi(app)
        app.state.openapi_document = document
    return document


@group.resource("/openapi.json").get()
async def openapi_json(call: Call) -> Reply:
    return Reply(json=openapi_of(call), headers={"Cache-Control": "no-cache"})


@group.resource("/docs").get(provides=("text/html",))
async def docs_page(_call: Call) -> Reply:
    return Reply(
        body=PAGE.encode(), media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


@lru_cache(maxsize=len(STATIC))
def _static(name: str) -> bytes:
    data: bytes = (swagger_ui_path / name).read_bytes()
    return data


@group.resource("/docs/static/{name}").get(provides=("text/css", "text/javascript", "image/png"))
async def docs_static(call: Call) -> Reply:
    name = call.params["name"]
    if name not in STATIC:
        raise Problem(404, "No such file.")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Reply(
        body=_static(name), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )
