from __future__ import annotations

from typing import Any

import pytest

from relaygate.pubsub import PubSub
from tests.recording import Recorder


@pytest.fixture
def recorder() -> Any:
    async def make(pubsub: PubSub, topic: str) -> Recorder:
        rec = Recorder()
        await pubsub.subscribe(topic, rec)
        return rec

    return make
