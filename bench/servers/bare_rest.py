"""The peers of the ``rest`` scenario, on the same seeded database as ``relaygate-api``.

``bare-fastapi`` (:func:`create_app`): plain FastAPI routes written the usual way, with the
SQLAlchemy ORM session per request: the handler a FastAPI + SQLAlchemy app would have.
``bare-starlette`` (:func:`create_starlette_app`): plain Starlette routes on the same driver
access as Relaygate's hot paths (``relaygate.db.direct``: prepared statements, no ORM): the
floor of the stack. Both do the POST's steps in the same order as the API: bearer token (decode,
user and revocation in the database), participant check, rate limit, store and commit, push.
Neither has Relaygate's HTTP semantics (conditional requests, problem details, ETags, ...).
"""

from __future__ import annotations

from typing import Any

import jwt
import orjson
from fastapi import FastAPI, Header, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from company_api.contexts import catalog
from company_api.contexts.catalog.models import Product
from company_api.contexts.chat.models import Conversation, Message
from relaygate.accounts.models import RevokedToken, User
from relaygate.config import get_settings
from relaygate.db import utcnow
from relaygate.db.direct import SQL, Tx
from relaygate.node import Node, node_lifespan


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    content: str = Field(min_length=1, max_length=4000)


def json(status: int, body: object) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _user_id(node: Node, authorization: str) -> tuple[int, str] | None:
    try:
        claims = jwt.decode(
            authorization.removeprefix("Bearer "), node.settings.signing_key(), algorithms=["HS256"]
        )
    except jwt.PyJWTError:
        return None
    return int(claims["sub"]), str(claims["jti"])


def _message_json(
    message_id: int, conversation_id: int, sender_id: int, content: str, at: Any
) -> dict[str, Any]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": message_id,
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "content": content,
        "date": stamp,
        "inserted_at": stamp,
    }


async def _push(node: Node, message: dict[str, Any], sender_id: int, recipient_id: int) -> None:
    for user_id in (recipient_id, sender_id):
        await node.pubsub.broadcast(f"user:{user_id}", "receive_msg", {"message": message})


def create_app() -> FastAPI:
    node = Node(get_settings())
    app = FastAPI(lifespan=node_lifespan(node), docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/v1/products/{product_id}")
    async def show_product(product_id: int) -> Response:
        async with node.db.session() as session:
            product = await session.get(Product, product_id)
        if product is None:
            return json(404, {"detail": "not found"})
        return json(200, {"data": catalog.product_json(product)})

    @app.post("/api/v1/conversations/{conversation_id}/messages")
    async def send_message(
        conversation_id: int, body: NewMessage, authorization: str = Header(default="")
    ) -> Response:
        caller = _user_id(node, authorization)
        if caller is None:
            return json(401, {"detail": "unauthenticated"})
        user_id, jti = caller
        revoked = select(RevokedToken.jti).where(RevokedToken.jti == jti).exists()
        participant = or_(Conversation.sender_id == user_id, Conversation.recipient_id == user_id)
        async with node.db.session() as session:
            user = await session.scalar(select(User).where(User.id == user_id, ~revoked))
            if user is None:
                return json(401, {"detail": "unauthenticated"})
            found = await session.scalar(
                select(Conversation).where(Conversation.id == conversation_id, participant)
            )
            if found is None:
                return json(404, {"detail": "not found"})
        await node.contexts.chat.check_rate(user_id)
        now = utcnow()
        async with node.db.transaction() as session:
            pair = (
                await session.execute(
                    update(Conversation)
                    .where(Conversation.id == conversation_id, participant)
                    .values(last_activity_at=now, updated_at=now)
                    .returning(Conversation.sender_id, Conversation.recipient_id)
                )
            ).one()
            row = Message(
                conversation_id=conversation_id,
                sender_id=user_id,
                content=body.content,
                date=now,
                inserted_at=now,
            )
            session.add(row)
            await session.flush()
            message = _message_json(row.id, conversation_id, user_id, body.content, now)
        await _push(
            node, message, user_id, pair.recipient_id if pair.sender_id == user_id else pair.sender_id
        )
        return json(201, {"data": message})

    return app


_PRODUCT = SQL(
    "SELECT id, name, description, price_cents, tags, revision, inserted_at, updated_at FROM products WHERE id = ?"
)
_USER = SQL("SELECT id FROM users WHERE id = ? AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?)")
_TOUCH = SQL(
    "UPDATE conversations SET last_activity_at = ?, updated_at = ? "
    "WHERE id = ? AND (sender_id = ? OR recipient_id = ?) RETURNING sender_id, recipient_id"
)
_INSERT = SQL(
    "INSERT INTO messages (conversation_id, sender_id, content, date, inserted_at) "
    "VALUES (?, ?, ?, ?, ?) RETURNING id"
)


def _raw(status: int, body: object) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_starlette_app() -> Starlette:
    node = Node(get_settings())
    direct = node.db.direct

    async def show_product(request: Request) -> Response:
        row = await direct.fetch_one(_PRODUCT, int(request.path_params["id"]))
        if row is None:
            return _raw(404, {"detail": "not found"})
        product = catalog.ProductRecord(
            row[0],
            row[1],
            row[2],
            row[3],
            orjson.loads(row[4]),
            row[5],
            direct.moment(row[6]),
            direct.moment(row[7]),
        )
        return _raw(200, {"data": catalog.product_json(product)})

    async def send_message(request: Request) -> Response:
        caller = _user_id(node, request.headers.get("authorization", ""))
        if caller is None or await direct.fetch_one(_USER, caller[0], caller[1]) is None:
            return _raw(401, {"detail": "unauthenticated"})
        user_id = caller[0]
        conversation_id = int(request.path_params["id"])
        try:
            content = NewMessage.model_validate_json(await request.body()).content
        except ValueError:
            return _raw(422, {"detail": "invalid"})
        await node.contexts.chat.check_rate(user_id)
        now = utcnow()
        stamp = direct.timestamp(now)

        async def store(tx: Tx) -> tuple[int, int, int] | None:
            pair = await tx.one(_TOUCH, stamp, stamp, conversation_id, user_id, user_id)
            if pair is None:
                return None
            inserted = await tx.one(_INSERT, conversation_id, user_id, content, stamp, stamp)
            assert inserted is not None
            return inserted[0], pair[0], pair[1]

        stored = await direct.run(store, write=True)
        if stored is None:
            return _raw(404, {"detail": "not found"})
        message = _message_json(stored[0], conversation_id, user_id, content, now)
        await _push(node, message, user_id, stored[2] if stored[1] == user_id else stored[1])
        return _raw(201, {"data": message})

    return Starlette(
        routes=[
            Route("/api/v1/products/{id:int}", show_product, methods=["GET"]),
            Route("/api/v1/conversations/{id:int}/messages", send_message, methods=["POST"]),
        ],
        lifespan=node_lifespan(node),
    )
