"""The catalog context: products, their rules and their change broadcasts."""

from company_api.contexts.catalog.products import (
    TOPIC,
    ProductFields,
    ProductInput,
    ProductPage,
    ProductRecord,
    ProductView,
    StaleProduct,
    create_product,
    delete_product,
    get_product,
    list_products,
    product_json,
    replace_product,
)

__all__ = [
    "TOPIC",
    "ProductFields",
    "ProductInput",
    "ProductPage",
    "ProductRecord",
    "ProductView",
    "StaleProduct",
    "create_product",
    "delete_product",
    "get_product",
    "list_products",
    "product_json",
    "replace_product",
]
