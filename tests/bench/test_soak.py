"""The soak's short variant: a minute of the mixed load against a real node, RSS bounded.

``python -m bench --scenario soak`` runs the same driver for ten minutes (results in
bench/RESULTS.md); here a minute is enough to catch a leak per message or per connection, which
grows the RSS at the rate of the load.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
from bench.scenarios.soak import LoadTarget, drive

from tests.web.liveserver import LiveServer, register, start_conversation

# The bound after the 20 s warm-up; the ten-minute run is held to 5 % after its first minute.
GROWTH_LIMIT_PCT = 5.0


async def test_a_minute_of_mixed_load_keeps_rss_bounded(tmp_path: Path) -> None:
    server = LiveServer(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        RELAYGATE_GATEWAY_MODULE="bench.servers.gateway_service:svc",
        RELAYGATE_CHAT_RATE_LIMIT=str(10**9),
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            _, token = await register(http, "Soaker")
            other, _ = await register(http, "Other")
            conversation = await start_conversation(http, token, other)
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        target = LoadTarget(server.socket_url, server.http_url, token, conversation)
        result = await drive(
            target, lambda: int(process.memory_info().rss), seconds=60, warmup_seconds=20, sample_seconds=5
        )
    finally:
        server.stop()
    assert result["failures"] == 0, result["first_failures"]
    assert set(result["operations_by_kind"]) == {"churn", "broadcast+reply", "gateway", "rest"}
    assert result["rss_growth_pct"] <= GROWTH_LIMIT_PCT, result["rss_samples_mb"]
