"""The browser demo at ``/`` (dev and test only): log in, conversations, a room with presence.

The page uses the official phoenix.js from the installed npm package (``npm ci``), served by
``/demo/phoenix.min.js``; nothing is loaded from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from relaygate.web import Problem

router = APIRouter(include_in_schema=False)
PAGE = Path(__file__).resolve().parent / "static" / "demo" / "index.html"
PHOENIX_JS = Path("node_modules") / "phoenix" / "priv" / "static" / "phoenix.min.js"


def phoenix_js() -> Path | None:
    """phoenix.min.js of the npm package, in the working directory's or the source tree's node_modules."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = root / PHOENIX_JS
        if candidate.is_file():
            return candidate
    return None


@router.get("/")
async def demo_page() -> Response:
    return FileResponse(PAGE, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/demo/phoenix.min.js")
async def demo_phoenix_js() -> Response:
    path = phoenix_js()
    if path is None:
        raise Problem(404, "phoenix.js is not installed here; run `npm ci` at the repository root.")
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "no-cache"})
