"""Products: validation rules, storage and change broadcasts (topic ``products``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import cast

from company_api.contexts.catalog.models import Product
from relaygate.db import SQL, Database, utcnow
from relaygate.pubsub import PubSub

TOPIC = "products"
NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL characters, so no product field may contain one."""

Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=NO_NUL)]


class ProductInput(BaseModel):
    """A product's writable fields (a full replacement: optional fields take their defaults)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    description: str = Field(default="", max_length=5000, pattern=NO_NUL)
    price_cents: int = Field(ge=0, le=2**31 - 1)
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class ProductView(BaseModel):
    """A product as the API and the broadcasts show it."""

    id: int
    name: str
    description: str
    price_cents: int
    tags: list[str]
    inserted_at: datetime
    updated_at: datetime


class ProductFields(Protocol):
    """A product as stored: an ORM row or a :class:`ProductRecord`."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def price_cents(self) -> int: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def revision(self) -> int: ...
    @property
    def inserted_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A product read for display (no ORM identity map, no session): an immutable value, so that
    the web layer may keep its encoded representation (``Representation.memo``)."""

    id: int
    name: str
    description: str
    price_cents: int
    tags: tuple[str, ...]
    revision: int
    inserted_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ProductPage:
    products: list[Product]
    last_id: int | None
    """Set when more products follow: the id to continue after."""


def iso(moment: datetime) -> str:
    """``2026-11-22T10:00:00Z`` (the moment is UTC already; slicing is cheaper than ``replace``)."""
    return moment.isoformat()[:19] + "Z"


def product_json(product: ProductFields) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "price_cents": product.price_cents,
        "tags": list(product.tags),
        "inserted_at": iso(product.inserted_at),
        "updated_at": iso(product.updated_at),
    }


_BY_ID = SQL(
    "SELECT id, name, description, price_cents, tags, revision, inserted_at, updated_at "
    "FROM products WHERE id = ?"
)


RECORDS_KEPT = 1024
_records: dict[tuple[Any, ...], ProductRecord] = {}
"""Row as read → its record: a row read again unchanged gives the same record (no parsing), and
any change to the row is a different key."""


async def get_product(db: Database, product_id: int) -> ProductRecord | None:
    """One product by id: a single prepared statement on the driver (the hot read of the API)."""
    direct = db.direct
    row = await direct.fetch_one(_BY_ID, product_id)
    if row is None:
        return None
    record = _records.get(row)
    if record is None:
        id_, name, description, price_cents, tags, revision, inserted_at, updated_at = row
        record = ProductRecord(
            id_,
            name,
            description,
            price_cents,
            tuple(orjson.loads(tags)),
            revision,
            direct.moment(inserted_at),
            direct.moment(updated_at),
        )
        if len(_records) >= RECORDS_KEPT:
            _records.clear()
        _records[row] = record
    return record


def _with_tag(query: Select[Product], db: Database, tag: str) -> Select[Product]:
    if db.dialect == "postgresql":
        return query.where(cast(Product.tags, JSONB).contains([tag]))
    values = func.json_each(Product.tags).table_valued("value")
    return query.where(exists(select(values.c.value).where(values.c.value == tag)))


async def list_products(
    db: Database, *, limit: int, after: int | None = None, tag: str | None = None
) -> ProductPage:
    """Products in id order, ``limit`` at a time, optionally only those carrying ``tag``."""
    query = select(Product).order_by(Product.id).limit(limit + 1)
    if after is not None:
        query = query.where(Product.id > after)
    if tag is not None:
        query = _with_tag(query, db, tag)
    async with db.session() as session:
        products = list((await session.scalars(query)).all())
    if len(products) > limit:
        return ProductPage(products[:limit], products[limit - 1].id)
    return ProductPage(products, None)


async def create_product(db: Database, pubsub: PubSub, data: ProductInput) -> Product:
    now = utcnow()
    product = Product(**data.model_dump(), revision=1, inserted_at=now, updated_at=now)
    async with db.transaction() as session:
        session.add(product)
    await pubsub.broadcast(TOPIC, "product:created", product_json(product))
    return product


class StaleProduct(Exception):
    """The product changed since the caller read the revision it expected."""


async def replace_product(
    db: Database, pubsub: PubSub, product_id: int, data: ProductInput, *, revision: int | None = None
) -> Product | None:
    """Replace every writable field; ``None`` if the product is gone.

    With ``revision`` the write only happens if the product is still at that revision
    (:class:`StaleProduct` otherwise), so a conditional request cannot overwrite a newer change.
    """
    statement = (
        update(Product)
        .where(Product.id == product_id)
        .values(**data.model_dump(), revision=Product.revision + 1, updated_at=utcnow())
        .returning(Product)
    )
    if revision is not None:
        statement = statement.where(Product.revision == revision)
    async with db.transaction() as session:
        product = (await session.scalars(statement)).one_or_none()
        if product is None and revision is not None and await session.get(Product, product_id) is not None:
            raise StaleProduct(product_id)
    if product is not None:
        await pubsub.broadcast(TOPIC, "product:updated", product_json(product))
    return product


async def delete_product(
    db: Database, pubsub: PubSub, product_id: int, *, revision: int | None = None
) -> bool:
    """Delete a product; ``False`` if it was already gone (``StaleProduct`` as for replace)."""
    async with db.transaction() as session:
        product = await session.get(Product, product_id, with_for_update=True)
        if product is None:
            return False
        if revision is not None and product.revision != revision:
            raise StaleProduct(product_id)
        await session.delete(product)
    await pubsub.broadcast(TOPIC, "product:deleted", {"id": product_id})
    return True
