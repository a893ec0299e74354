"""phoenix.js `Presence` against one node with MemoryPresence: onSync, onJoin, onLeave, multi-device."""

from __future__ import annotations

import pytest

from tests.conformance import presence_scenario
from tests.conformance.node import run_driver

pytestmark = pytest.mark.node


async def test_multi_device_presence_and_rejoin_scenarios_44_45(presence_server_url: str) -> None:
    observations = await run_driver(
        presence_server_url, presence_scenario.steps("room:devices"), presence_scenario.OPTIONS
    )
    presence_scenario.check(observations)
