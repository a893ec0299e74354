"""``/api/v1/products``: the public catalogue, written by administrators."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from company_api.contexts import catalog
from company_api.contexts.catalog import ProductFields, ProductRecord
from company_api.contexts.catalog.models import Product
from relaygate.web import (
    Call,
    Page,
    Problem,
    Representation,
    ResourceGroup,
    Validators,
    decode_cursor,
    encode_cursor,
)

PREFIX = "/api/v1"


class ProductQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=50, ge=1, le=200, description="Page size")
    after: str | None = Field(default=None, description="Cursor from `meta.next` or the `Link` header")
    tag: str | None = Field(default=None, min_length=1, max_length=50, pattern=r"^[^\x00]*$")


def validators(product: ProductFields) -> Validators:
    return Validators(
        f"{product.id}-{product.revision}-{product.inserted_at.timestamp():.6f}", product.updated_at
    )


def location(product: ProductFields) -> str:
    return f"{PREFIX}/products/{product.id}"


PRODUCT = Representation(
    schema=catalog.ProductView, render=catalog.product_json, validators=validators, memo=1024
)


async def load(call: Call) -> ProductRecord | None:
    return await catalog.get_product(call.node.db, call.params["id"])


def expected_revision(call: Call) -> int | None:
    """With ``If-Match`` the write must hit the revision the precondition was checked against."""
    return call.entity.revision if "if-match" in call.headers else None


group = ResourceGroup(prefix=PREFIX, tag="products")
collection = group.resource("/products")
item = group.resource("/products/{id}", ids=("id",), load=load, representation=PRODUCT)


@collection.get(query=ProductQuery, page=PRODUCT, summary="List products", errors={400: "Tampered cursor"})
async def list_products(call: Call) -> Page:
    query: ProductQuery = call.query
    secret = call.node.settings.signing_key()
    after = decode_cursor(query.after, secret) if query.after is not None else None
    if after is not None and not isinstance(after, int):
        raise Problem(400, "The cursor is not valid.")
    page = await catalog.list_products(call.node.db, limit=query.limit, after=after, tag=query.tag)
    cursor = encode_cursor(page.last_id, secret) if page.last_id is not None else None
    return Page(page.products, cursor)


@collection.post(
    auth="admin",
    body=catalog.ProductInput,
    representation=PRODUCT,
    status=201,
    location=location,
    summary="Create a product",
)
async def create_product(call: Call) -> Product:
    return await catalog.create_product(call.node.db, call.node.pubsub, call.body)


@item.get(summary="Show a product")
async def show_product(call: Call) -> Any:
    return call.entity


async def _replace(call: Call) -> Product:
    try:
        product = await catalog.replace_product(
            call.node.db, call.node.pubsub, call.params["id"], call.body, revision=expected_revision(call)
        )
    except catalog.StaleProduct:
        raise Problem(412, "The product changed meanwhile.") from None
    if product is None:
        raise Problem(404, "No resource at this address.")
    return product


@item.put(auth="admin", body=catalog.ProductInput, summary="Replace a product")
async def replace_product(call: Call) -> Product:
    return await _replace(call)


@item.patch(auth="admin", body=catalog.ProductInput, summary="Change a product (JSON merge patch)")
async def patch_product(call: Call) -> Product:
    return await _replace(call)


@item.delete(auth="admin", summary="Delete a product")
async def delete_product(call: Call) -> None:
    try:
        deleted = await catalog.delete_product(
            call.node.db, call.node.pubsub, call.params["id"], revision=expected_revision(call)
        )
    except catalog.StaleProduct:
        raise Problem(412, "The product changed meanwhile.") from None
    if not deleted:
        raise Problem(404, "No resource at this address.")
