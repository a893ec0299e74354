"""``GET /dashboard``: the page for browsers, the current view as JSON for API clients (admins).

A browser (``Accept: text/html``) gets the page without credentials: it only holds a sign-in form
and script; the data flows over the admin-only channel once signed in. Any other client must send
an administrator's bearer token (``401``/``403`` problem+json otherwise) and gets the view as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from relaygate.web.conditional import negotiate
from relaygate.web.problems import Problem
from relaygate.web.resources import Call, Reply, ResourceGroup

STATIC: Final = Path(__file__).resolve().parent / "static"
PHOENIX_JS: Final = Path("node_modules") / "phoenix" / "priv" / "static" / "phoenix.min.js"
HTML: Final = "text/html"
PROVIDES: Final = ("application/json", HTML)
ASSETS: Final = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "phoenix.min.js": "text/javascript",
}
NO_STORE: Final = {"Cache-Control": "no-store"}


def phoenix_js() -> Path | None:
    """phoenix.min.js of the npm package (``npm ci``), in the working directory's or the source tree's
    node_modules; nothing is loaded from a CDN."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = root / PHOENIX_JS
        if candidate.is_file():
            return candidate
    return None


group = ResourceGroup(include_in_schema=False)
page = group.resource("/dashboard")
asset = group.resource("/dashboard/assets/{name}")


async def _require_admin(call: Call) -> None:
    scheme, _, token = call.headers.get("authorization", "").partition(" ")
    principal = None
    if scheme.lower() == "bearer" and token.strip():
        principal = await call.node.accounts.authenticate_token(token.strip())
    if principal is None:
        detail = "A valid bearer token is required." if scheme else "Authentication required."
        raise Problem(401, detail, headers={"WWW-Authenticate": "Bearer"})
    if not principal.is_admin:
        raise Problem(403, "Only administrators may see the dashboard.")


@page.get(provides=PROVIDES)
async def dashboard(call: Call) -> Reply:
    accept = call.headers.get("accept")
    media_type = negotiate(accept, PROVIDES) if accept else PROVIDES[0]
    if media_type != HTML or "authorization" in call.headers:
        await _require_admin(call)
    if media_type == HTML:
        body = (STATIC / "index.html").read_bytes()
        return Reply(body=body, media_type="text/html; charset=utf-8", headers=NO_STORE)
    return Reply(json={"data": await call.node.dashboard.snapshot()}, headers=NO_STORE)


@asset.get(provides=("*/*",))
async def dashboard_asset(call: Call) -> Reply:
    name = call.params["name"]
    media_type = ASSETS.get(name)
    path = phoenix_js() if name == "phoenix.min.js" else STATIC / name
    if media_type is None or path is None:
        raise Problem(404, "No resource at this address.")
    return Reply(body=path.read_bytes(), media_type=media_type, headers={"Cache-Control": "no-cache"})
