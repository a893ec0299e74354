"""The catalog context on SQLite and PostgreSQL: storage, tag filter, pages, broadcasts."""

from __future__ import annotations

from typing import Any

import pytest

from company_api.contexts import catalog
from relaygate.db import Database
from relaygate.pubsub import Broadcast, MemoryPubSub


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Broadcast] = []

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.messages.append(message)


@pytest.fixture
async def pubsub() -> Any:
    bus = MemoryPubSub()
    await bus.start()
    yield bus
    await bus.stop()


def product(name: str, **fields: Any) -> catalog.ProductInput:
    return catalog.ProductInput.model_validate({"name": name, "price_cents": 100, **fields})


async def test_create_replace_delete_broadcast(db: Database, pubsub: MemoryPubSub) -> None:
    inbox = Inbox()
    await pubsub.subscribe(catalog.TOPIC, inbox)
    created = await catalog.create_product(db, pubsub, product("Lamp", tags=["home"]))
    assert created.revision == 1
    loaded = await catalog.get_product(db, created.id)
    assert loaded is not None and loaded.tags == ("home",) and loaded.description == ""
    replaced = await catalog.replace_product(db, pubsub, created.id, product("Desk lamp", price_cents=5))
    assert replaced is not None and replaced.revision == 2 and replaced.tags == []
    with pytest.raises(catalog.StaleProduct):
        await catalog.replace_product(db, pubsub, created.id, product("x"), revision=1)
    assert await catalog.replace_product(db, pubsub, 999_999, product("x")) is None
    assert await catalog.delete_product(db, pubsub, created.id) is True
    assert await catalog.delete_product(db, pubsub, created.id) is False
    events = [(m.event, m.payload) for m in inbox.messages]
    assert [event for event, _ in events] == ["product:created", "product:updated", "product:deleted"]
    assert events[0][1]["name"] == "Lamp" and events[0][1]["inserted_at"].endswith("Z")
    assert events[1][1]["name"] == "Desk lamp"
    assert events[2][1] == {"id": created.id}


async def test_pages_and_tag_filter(db: Database, pubsub: MemoryPubSub) -> None:
    ids = [
        (await catalog.create_product(db, pubsub, product(f"p{i}", tags=["odd" if i % 2 else "even"]))).id
        for i in range(7)
    ]
    page = await catalog.list_products(db, limit=3)
    assert [p.id for p in page.products] == ids[:3] and page.last_id == ids[2]
    page = await catalog.list_products(db, limit=3, after=page.last_id)
    assert [p.id for p in page.products] == ids[3:6]
    page = await catalog.list_products(db, limit=3, after=page.last_id)
    assert [p.id for p in page.products] == ids[6:] and page.last_id is None
    odd = await catalog.list_products(db, limit=50, tag="odd")
    assert [p.name for p in odd.products] == ["p1", "p3", "p5"]
    assert (await catalog.list_products(db, limit=50, tag="od")).products == []
