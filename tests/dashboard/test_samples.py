"""The dashboard's arithmetic: registry readings, rates, histogram quantiles, cluster merges."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from relaygate.dashboard.samples import (
    Sample,
    cluster_view,
    deltas,
    merge_stats,
    node_stats,
    quantile,
    read_sample,
)


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    buckets = {0.005: 0.0, 0.01: 5.0, 0.1: 10.0, math.inf: 10.0}
    assert quantile(buckets, 0.5) == pytest.approx(0.01)
    assert quantile(buckets, 0.99) == pytest.approx(0.01 + 0.09 * (9.9 - 5) / 5)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound_and_none_without_data() -> None:
    assert quantile({0.1: 1.0, math.inf: 10.0}, 0.5) == 0.1
    assert quantile({0.1: 0.0, math.inf: 0.0}, 0.5) is None
    assert quantile({}, 0.5) is None


def test_a_counter_that_went_down_counts_from_zero() -> None:
    old = Sample(0.0, {"joins": 10.0, "gone": 3.0})
    new = Sample(1.0, {"joins": 4.0, "calls": 2.0})
    assert deltas(old, new) == {"joins": 4.0, "calls": 2.0}


def _registry() -> tuple[CollectorRegistry, Counter, Gauge, Counter, Histogram]:
    registry = CollectorRegistry()
    joins = Counter("relaygate_channel_joins_total", "j", registry=registry)
    joined = Gauge("relaygate_channels_joined", "g", ["prefix"], registry=registry)
    calls = Counter(
        "relaygate_gateway_calls_total", "c", ["service", "request_type", "code"], registry=registry
    )
    seconds = Histogram(
        "relaygate_gateway_call_seconds",
        "s",
        ["service", "request_type"],
        buckets=(0.01, 0.1),
        registry=registry,
    )
    return registry, joins, joined, calls, seconds


def test_node_stats_give_rates_channels_topics_and_latency_buckets_of_the_window() -> None:
    registry, joins, joined, calls, seconds = _registry()
    joins.inc(5)
    calls.labels("inv", "get", "ok").inc(100)
    old = read_sample([registry], 10.0)
    joins.inc(4)
    joined.labels("room").set(3)
    joined.labels("gateway").set(0)
    calls.labels("inv", "get", "ok").inc(6)
    calls.labels("inv", "get", "disabled").inc(2)
    for _ in range(8):
        seconds.labels("inv", "get").observe(0.05)
    new = read_sample([registry], 12.0, {"messages_out": 10.0})

    stats = node_stats(old, new, [("room:a", 2), ("room:b", 1), ("users_socket:1", 1)])

    assert stats["joins_per_s"] == 2.0
    assert stats["messages_out_per_s"] == 5.0
    assert stats["channels"] == {"room": {"subscribers": 3, "topics": 2}}
    assert stats["topics"] == [["room:a", 2], ["room:b", 1]]
    gateway = stats["gateway"]["inv/get"]
    assert gateway["calls"] == 4.0 and gateway["total"] == 108
    assert gateway["codes"] == {"ok": 6, "disabled": 2}
    assert gateway["buckets"] == {"0.01": 0.0, "0.1": 8.0, "+Inf": 8.0}


def test_without_an_older_sample_rates_are_zero() -> None:
    registry, joins, *_ = _registry()
    joins.inc(7)
    stats = node_stats(None, read_sample([registry], 1.0))
    assert stats["joins_per_s"] == 0.0


def _stats(sockets: int, fast: float, slow: float) -> dict[str, object]:
    return {
        "sockets": sockets,
        "joins_per_s": 1.5,
        "channels": {"room": {"subscribers": sockets, "topics": 1}},
        "topics": [["room:lobby", sockets]],
        "rate_limited": {"login": {"total": 1, "per_s": 0.0}},
        "history_per_s": {},
        "gateway": {
            "inv/get": {
                "calls": 1.0,
                "total": 10,
                "codes": {"ok": 3},
                "buckets": {"0.01": fast, "0.1": fast + slow, "+Inf": fast + slow},
            }
        },
    }


def test_merged_stats_add_up_and_quantiles_come_from_the_summed_buckets() -> None:
    merged = merge_stats([_stats(2, fast=10, slow=0), _stats(3, fast=0, slow=10)])
    assert merged["sockets"] == 5 and merged["joins_per_s"] == 3.0
    assert merged["channels"] == {"room": {"subscribers": 5, "topics": 1}}
    assert merged["topics"] == [["room:lobby", 5]]
    assert merged["rate_limited"] == {"login": {"total": 2, "per_s": 0.0}}
    assert merged["gateway"]["inv/get"]["codes"] == {"ok": 6}
    assert merged["gateway"]["inv/get"]["buckets"] == {"0.01": 10, "0.1": 20, "+Inf": 20}


def _report(node: str, pid: int, sockets: int, health: str = "ok") -> dict[str, object]:
    return {
        "node": node,
        "pid": pid,
        "version": "1",
        "started_at": 100.0,
        "health": {"database": health},
        "errors": [{"at": float(pid), "level": "error", "logger": "x", "message": f"m{pid}"}],
        "stats": _stats(sockets, fast=1, slow=1),
    }


def test_cluster_view_groups_workers_by_node_and_leaves_stale_processes_out() -> None:
    reports = [
        (100.0, _report("a/w0", 1, 2)),
        (100.0, _report("a/w1", 2, 3, health="error: OSError")),
        (95.0, _report("a/w2", 4, 11)),
        (90.0, _report("b", 3, 7)),
    ]
    view = cluster_view(reports, now=101.0, wall=160.0, stale_after=3.5, errors=2)
    a, b = view["nodes"]
    assert (a["name"], a["workers"], a["stats"]["sockets"], a["stale_s"]) == ("a", 2, 5, None)
    assert a["health"] == {"database": "error: OSError"}
    assert a["uptime_s"] == 60
    assert a["stats"]["gateway"]["inv/get"]["p50_ms"] == pytest.approx(10.0)
    assert (b["name"], b["workers"], b["stats"]["sockets"], b["stale_s"]) == ("b", 1, 7, 11.0)
    assert view["totals"]["sockets"] == 5
    assert [(e["node"], e["message"]) for e in view["errors"]] == [("a/w2", "m4"), ("b", "m3")]


def test_the_dashboards_own_messages_are_left_out_of_the_pubsub_rates() -> None:
    registry = CollectorRegistry()
    broadcasts = Counter("relaygate_pubsub_broadcasts_total", "b", ["direction"], registry=registry)
    old = read_sample([registry], 0.0, {"own_pubsub_out": 0.0})
    broadcasts.labels("out").inc(10)
    broadcasts.labels("in").inc(1)
    new = read_sample([registry], 2.0, {"own_pubsub_out": 4.0, "own_pubsub_in": 3.0})
    stats = node_stats(old, new)
    assert (stats["pubsub_out_per_s"], stats["pubsub_in_per_s"]) == (3.0, 0.0)
