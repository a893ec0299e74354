"""relaygate.client recovers by itself against the real runtime (the conformance app, `hist:*`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from relaygate.client import Client
from tests.client.scripted import eventually


async def test_the_client_rejoins_with_since_and_gets_what_it_missed_once(server_url: str) -> None:
    topic = f"histbig:{uuid.uuid4().hex[:8]}"
    offline = False
    a = Client(server_url, params=lambda: {"user_id": "a", "token": "bad" if offline else "ok"},
               reconnect_after=lambda _: 0.05, rejoin_after=lambda _: 0.05)  # fmt: skip
    b = Client(server_url)
    await a.connect()
    await b.connect()
    try:
        chan = a.channel(topic)
        got: list[Any] = []
        chan.on("m", lambda payload: got.append(payload["n"]))
        await chan.join()
        sender = b.channel(topic)
        await sender.join()
        await sender.push("broadcast", {"event": "m", "payload": {"n": 0}})
        await eventually(lambda: got == [0])
        offline = True  # a cannot come back until we say so (its connect is refused)
        await sender.push("disconnect", {"id": "user:a"})
        await eventually(lambda: not a.is_connected)
        for n in (1, 2, 3):
            await sender.push("broadcast", {"event": "m", "payload": {"n": n}})
        offline = False
        await eventually(lambda: got == [0, 1, 2, 3])
        assert chan.recovered is True
        await sender.push("broadcast", {"event": "m", "payload": {"n": 4}})
        await eventually(lambda: got == [0, 1, 2, 3, 4])
        await asyncio.sleep(0.1)
        assert got == [0, 1, 2, 3, 4]
        assert chan.position is not None and chan.position.endswith(":5")
    finally:
        await a.close()
        await b.close()
