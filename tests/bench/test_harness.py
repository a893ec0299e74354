"""The benchmark harness itself: one tiny run per scenario against the bare websockets peer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.__main__ import main
from bench.scenarios import SCENARIOS, load, split

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.bench


def test_split_covers_every_index_once() -> None:
    parts = split(10, 3)
    assert [list(r) for r in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_has_a_quick_and_a_full_size(name: str) -> None:
    module = load(name)
    quick, full = module.size(True), module.size(False)
    assert quick.keys() == full.keys()
    keys = {m.key for m in module.METRICS}
    assert all(t.metric in keys for t in module.TARGETS)


def test_tiny_fanout_against_bare_websockets_writes_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load("fanout")
    monkeypatch.setattr(
        module, "size", lambda quick: {"subscribers": 6, "messages": 5, "workers": 2, "window": 2}
    )
    assert (
        main(["--quick", "--scenario", "fanout", "--system", "bare-websockets", "--out", str(tmp_path)]) == 0
    )

    record = json.loads((tmp_path / "fanout.json").read_text())
    metrics = record["systems"]["bare-websockets"]["metrics"]
    assert metrics["subscribers"] == 6
    assert metrics["delivered"] == 30
    assert metrics["lost"] == 0
    assert metrics["p99_ms"] >= metrics["p50_ms"] > 0
    assert metrics["server_cpu_us_per_msg"] >= 0  # CPU clock ticks are 10 ms: 30 messages may cost 0
    report = (tmp_path / "RESULTS.md").read_text()
    assert "| bare-websockets | 6 | 30 | 0 |" in report
    assert (tmp_path / "fanout.png").stat().st_size > 0


def test_profile_summary_ranks_self_and_inclusive_time(tmp_path: Path) -> None:
    from bench.profile import summarize

    raw = tmp_path / "profile.txt"
    raw.write_text(
        "main (/x/app.py:1);loop (/x/site-packages/uvicorn/server.py:9);send (/x/src/relaygate/s.py:3) 6\n"
        "main (/x/app.py:1);loop (/x/site-packages/uvicorn/server.py:9) 3\n"
        "main (/x/app.py:1);idle (/x/app.py:7) 1\n"
    )
    summary = summarize(raw)
    assert summary["samples"] == 10
    assert summary["self"][0] == ("send (relaygate/s.py)", 60.0)
    assert ("loop (uvicorn/server.py)", 90.0) not in summary["inclusive"]  # on 90% of stacks: the loop itself
    assert ("loop (uvicorn/server.py)", 30.0) in summary["self"]


def test_tiny_idle_run_keeps_sockets_open_and_heartbeating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load("idle-connections")
    tiny = {
        "connections": 10,
        "workers": 2,
        "idle_seconds": 1.0,
        "settle_seconds": 0.2,
        "heartbeat_seconds": 0.2,
    }
    monkeypatch.setattr(module, "size", lambda quick: tiny)
    assert (
        main(
            [
                "--quick",
                "--scenario",
                "idle-connections",
                "--system",
                "bare-websockets",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )

    metrics = json.loads((tmp_path / "idle-connections.json").read_text())["systems"]["bare-websockets"][
        "metrics"
    ]
    assert metrics["joined"] == 10
    assert metrics["open_after_idle"] == 10
    assert metrics["heartbeats_ok"] >= 10  # every socket got at least one heartbeat reply in the idle second


def test_tiny_presence_churn_on_two_nodes_through_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load("presence-churn")
    monkeypatch.setattr(module, "size", lambda quick: {"rate": 10, "seconds": 1.0, "hold": 0.3, "workers": 2})
    argv = ["--quick", "--scenario", "presence-churn", "--system", "relaygate-redis", "--out", str(tmp_path)]
    assert main(argv) == 0

    entry = json.loads((tmp_path / "presence-churn.json").read_text())["systems"]["relaygate-redis"]
    assert "error" not in entry, entry.get("traceback")
    metrics = entry["metrics"]
    assert metrics["joins"] + metrics["skipped"] == 10
    assert metrics["joins"] > 0
    assert metrics["missed_diffs"] == 0  # every join and leave reached the observer on each node
    assert metrics["diff_p99_ms"] >= metrics["diff_p50_ms"] > 0


def _tiny_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str, system: str, tiny: dict[str, object]
) -> dict[str, object]:
    monkeypatch.setattr(load(scenario), "size", lambda quick: tiny)
    assert main(["--quick", "--scenario", scenario, "--system", system, "--out", str(tmp_path)]) == 0
    entry = json.loads((tmp_path / f"{scenario}.json").read_text())["systems"][system]
    assert "error" not in entry, entry.get("traceback")
    metrics: dict[str, object] = entry["metrics"]
    return metrics


def test_tiny_gateway_run_calls_a_service_node_over_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # long enough that every phase completes calls even on a loaded 2-core machine
    tiny = {"callers": 4, "workers": 2, "warmup_seconds": 0.5, "seconds": 2.0}
    metrics = _tiny_run(tmp_path, monkeypatch, "gateway", "relaygate-gateway-redis", tiny)
    assert metrics["callers"] == 4
    for phase in ("sync", "async", "stream"):  # every response type completed calls with the right results
        assert metrics[f"{phase}_per_s"] > 0  # type: ignore[operator]
        assert metrics[f"{phase}_p99_ms"] >= metrics[f"{phase}_p50_ms"] > 0  # type: ignore[operator]
    assert metrics["failures"] == 0
    assert "| relaygate-gateway-redis | 4 |" in (tmp_path / "RESULTS.md").read_text()


def test_tiny_rest_run_reads_products_and_posts_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = {"connections": 2, "workers": 1, "warmup_seconds": 0.2, "seconds": 0.5}
    metrics = _tiny_run(tmp_path, monkeypatch, "rest", "relaygate-api", tiny)
    assert metrics["connections"] == 2
    assert metrics["get_per_s"] > 0 and metrics["post_per_s"] > 0  # type: ignore[operator]
    assert metrics["failures"] == 0  # every GET answered 200 and every POST 201


@pytest.mark.parametrize("node", [True, False], ids=["node-generator", "python-generator"])
def test_tiny_large_room_fills_every_list_and_delivers_the_broadcast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: bool
) -> None:
    from bench.scenarios import large_room

    if node and not large_room.node_generator():
        pytest.skip("no node here")
    monkeypatch.setattr(large_room, "node_generator", lambda: node)
    tiny = {"members": 20, "workers": 2, "fill_timeout": 30.0}
    metrics = _tiny_run(tmp_path, monkeypatch, "large-room", "relaygate", tiny)
    assert metrics["joined"] == metrics["complete"] == metrics["broadcast_received"] == 20
    assert 1 <= metrics["frames_per_member"] <= metrics["frames_per_member_max"]  # type: ignore[operator]
