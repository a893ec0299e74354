from __future__ import annotations

from tests.company_api.channels.conftest import Connect


async def test_any_user_joins_products_and_sends_nothing(connect: Connect, users: list[int]) -> None:
    products = await (await connect(users[0])).join("products")
    assert list(products.response) == ["position"]  # products keeps history (history.md)
    reply = await products.assert_reply(await products.push("product:created", {}), "error")
    assert reply["reason"] == "invalid"
