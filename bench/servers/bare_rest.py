"""The floor of the ``rest`` scenario: plain FastAPI routes doing the same queries as the API.

Same node contexts (catalog, accounts, chat) on the same seeded database, so the difference to
``relaygate-api`` is the web layer alone (resources, representations, validators/ETags,
problem details, middleware). The POST does the same steps in the same order: bearer token,
body, participant check, rate limit, store and push. Bodies are encoded with orjson.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from company_api.contexts import catalog
from company_api.contexts.chat import ConversationNotFound
from relaygate.config import get_settings
from relaygate.node import Node, node_lifespan


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    content: str = Field(min_length=1, max_length=4000)


def json(status: int, body: object) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app() -> FastAPI:
    node = Node(get_settings())
    app = FastAPI(lifespan=node_lifespan(node), docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/v1/products/{product_id}")
    async def show_product(product_id: int) -> Response:
        product = await catalog.get_product(node.db, product_id)
        if product is None:
            return json(404, {"detail": "not found"})
        return json(200, {"data": catalog.product_json(product)})

    @app.post("/api/v1/conversations/{conversation_id}/messages")
    async def send_message(
        conversation_id: int, body: NewMessage, authorization: str = Header(default="")
    ) -> Response:
        principal = await node.accounts.authenticate_token(authorization.removeprefix("Bearer "))
        if principal is None:
            return json(401, {"detail": "unauthenticated"})
        try:
            await node.contexts.chat.get_conversation(principal.user_id, conversation_id)
        except ConversationNotFound:
            return json(404, {"detail": "not found"})
        await node.contexts.chat.check_rate(principal.user_id)
        message = await node.contexts.chat.send_message(
            principal.user_id, conversation_id, body.content, rate_checked=True
        )
        return json(201, {"data": message.to_json()})

    return app
