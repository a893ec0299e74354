from __future__ import annotations

import httpx
import pytest

from company_api.web.demo import phoenix_js
from relaygate.config import Settings
from relaygate.node import create_app


async def test_the_demo_page_uses_the_local_phoenix_js(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/demo/phoenix.min.js"></script>' in page.text
    assert "https://" not in page.text and "http://" not in page.text  # no CDN
    if phoenix_js() is None:
        pytest.skip("node_modules/phoenix is not installed (npm ci)")
    script = await http.get("/demo/phoenix.min.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.text.startswith("var Phoenix=")


async def test_there_is_no_demo_in_prod(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"env": "prod"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/")).status_code == 404
            assert (await http.get("/demo/phoenix.min.js")).status_code == 404
