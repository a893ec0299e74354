"""Pure arithmetic of the dashboard (no I/O): Prometheus samples in, rates, quantiles and views out.

A node reads its Prometheus registries (the ones ``/metrics`` serves) into a :class:`Sample`: flat
cumulative counters and current gauges. Two samples a few seconds apart give rates and, for latency
histograms, the bucket counts of that window; :func:`node_stats` turns them into the node's
:class:`dict` report and :func:`merge_stats` adds reports of several nodes into cluster totals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

_WORKER: Final = re.compile(r"/w[0-9]+$")
SEP: Final = "\x1f"
"""Joins label values in flat keys (never inside a service or request_type name)."""
TOP_TOPICS: Final = 50


class Collectable(Protocol):
    """What a ``prometheus_client`` registry offers (``collect()`` of metric families)."""

    def collect(self) -> Iterable[Any]: ...


@dataclass(slots=True)
class Sample:
    """One reading of a node's metrics at ``at`` (seconds, monotonic or wall: only differences count)."""

    at: float
    counters: dict[str, float] = field(default_factory=dict)
    """Cumulative values: ``joins``, ``messages_in``, ``calls<SEP>svc<SEP>rt<SEP>code``, ``bucket<SEP>svc<SEP>rt<SEP>le``..."""
    gauges: dict[str, float] = field(default_factory=dict)
    """Current values: ``sockets``, ``presence_entries``, ``joined<SEP>prefix``, ``rss``."""


_COUNTERS: Final = {
    "relaygate_channel_joins_total": "joins",
    "relaygate_slow_consumer_closes_total": "slow_closes",
    "process_cpu_seconds_total": "cpu_seconds",
}
_GAUGES: Final = {
    "relaygate_sockets_open": "sockets",
    "relaygate_presence_entries": "presence_entries",
    "process_resident_memory_bytes": "rss",
}


def read_sample(registries: Sequence[Collectable], at: float, extra: Mapping[str, float] = {}) -> Sample:
    """Flatten the registries' families into one :class:`Sample` (``extra`` adds counters)."""
    sample = Sample(at, dict(extra))
    counters, gauges = sample.counters, sample.gauges
    for registry in registries:
        for family in registry.collect():
            for s in family.samples:
                name, labels, value = s.name, s.labels, float(s.value)
                if name in _COUNTERS:
                    counters[_COUNTERS[name]] = value
                elif name in _GAUGES:
                    gauges[_GAUGES[name]] = value
                elif name == "relaygate_channels_joined":
                    gauges[f"joined{SEP}{labels.get('prefix', '')}"] = value
                elif name == "relaygate_channel_messages_total":
                    counters[f"messages_{labels.get('direction', '')}"] = value
                elif name == "relaygate_pubsub_broadcasts_total":
                    counters[f"pubsub_{labels.get('direction', '')}"] = value
                elif name == "relaygate_rate_limit_rejections_total":
                    _add(counters, f"rate_limited{SEP}{labels.get('scope', '')}", value)
                elif name == "relaygate_gateway_rate_limited_total":
                    _add(counters, f"rate_limited{SEP}gateway", value)
                elif name == "relaygate_gateway_calls_total" and "code" in labels:
                    key = SEP.join(("calls", labels["service"], labels["request_type"], labels["code"]))
                    counters[key] = value
                elif name == "relaygate_gateway_call_seconds_bucket":
                    key = SEP.join(("bucket", labels["service"], labels["request_type"], labels["le"]))
                    counters[key] = value
                elif name.startswith("relaygate_history_") and name.endswith("_total"):
                    label = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                    short = name.removeprefix("relaygate_history_").removesuffix("_total")
                    counters[f"history{SEP}{short}{'{' + label + '}' if label else ''}"] = value
    return sample


def _add(values: dict[str, float], key: str, value: float) -> None:
    values[key] = values.get(key, 0.0) + value


def deltas(old: Sample, new: Sample) -> dict[str, float]:
    """Counter increases from ``old`` to ``new``; a counter that went down (a restart) counts from 0."""
    out: dict[str, float] = {}
    for key, value in new.counters.items():
        before = old.counters.get(key, 0.0)
        out[key] = value - before if value >= before else value
    return out


def quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative ``{upper bound: count}``; None without data.

    Linear interpolation inside the bucket holding the rank; a rank in the ``+Inf`` bucket answers
    the highest finite bound (as Prometheus does).
    """
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def node_stats(old: Sample | None, new: Sample, topics: Iterable[tuple[str, int]] = ()) -> dict[str, Any]:
    """One node's report: gauges now, rates per second and window counts between ``old`` and ``new``.

    Without an ``old`` sample (the first second of watching) rates are 0. ``topics`` is every
    local topic with its subscriber count; only topics under a joined channel prefix are kept.
    ``own_pubsub_in``/``own_pubsub_out`` (the dashboard's own messages) are left out of the PubSub rates.
    """
    span = new.at - old.at if old is not None else 0.0
    window = deltas(old, new) if old is not None and span > 0 else {}

    def rate(key: str) -> float:
        return round(window.get(key, 0.0) / span, 3) if span > 0 else 0.0

    joined = {
        key.split(SEP, 1)[1]: int(value)
        for key, value in new.gauges.items()
        if key.startswith(f"joined{SEP}") and value > 0
    }
    gateway: dict[str, dict[str, Any]] = {}
    for key, value in new.counters.items():
        kind, _, rest = key.partition(SEP)
        if kind not in ("calls", "bucket"):
            continue
        service, request_type, label = rest.split(SEP)
        entry = gateway.setdefault(
            f"{service}/{request_type}", {"calls": 0.0, "total": 0, "codes": {}, "buckets": {}}
        )
        if kind == "calls":
            entry["total"] += int(value)
            entry["calls"] = round(entry["calls"] + rate(key), 3)
            if window.get(key):
                entry["codes"][label] = entry["codes"].get(label, 0) + int(window[key])
        else:
            entry["buckets"][label] = window.get(key, 0.0)
    rate_limited = {
        key.split(SEP, 1)[1]: {"total": int(value), "per_s": rate(key)}
        for key, value in new.counters.items()
        if key.startswith(f"rate_limited{SEP}")
    }
    history = {key.split(SEP, 1)[1]: rate(key) for key in new.counters if key.startswith(f"history{SEP}")}
    prefixes = set(joined)
    local_topics = sorted(
        ((topic, count) for topic, count in topics if topic.partition(":")[0] in prefixes),
        key=lambda item: (-item[1], item[0]),
    )
    channels = {prefix: {"subscribers": count, "topics": 0} for prefix, count in joined.items()}
    for topic, _count in local_topics:
        channels[topic.partition(":")[0]]["topics"] += 1
    return {
        "sockets": int(new.gauges.get("sockets", 0)),
        "presence_entries": int(new.gauges.get("presence_entries", 0)),
        "rss_bytes": int(new.gauges.get("rss", 0)),
        "cpu_percent": round(100 * rate("cpu_seconds"), 1),
        "joins_per_s": rate("joins"),
        "messages_in_per_s": rate("messages_in"),
        "messages_out_per_s": rate("messages_out"),
        "broadcasts_per_s": rate("broadcasts"),
        "pubsub_in_per_s": max(0.0, round(rate("pubsub_in") - rate("own_pubsub_in"), 3)),
        "pubsub_out_per_s": max(0.0, round(rate("pubsub_out") - rate("own_pubsub_out"), 3)),
        "slow_closes_per_s": rate("slow_closes"),
        "slow_closes_total": int(new.counters.get("slow_closes", 0)),
        "history_per_s": history,
        "rate_limited": rate_limited,
        "channels": channels,
        "topics": [list(item) for item in local_topics[:TOP_TOPICS]],
        "gateway": gateway,
    }


_SUMMED: Final = (
    "sockets",
    "presence_entries",
    "rss_bytes",
    "cpu_percent",
    "joins_per_s",
    "messages_in_per_s",
    "messages_out_per_s",
    "broadcasts_per_s",
    "pubsub_in_per_s",
    "pubsub_out_per_s",
    "slow_closes_per_s",
    "slow_closes_total",
)


def merge_stats(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals of several node reports (sums; latency buckets add up, so quantiles stay exact)."""
    merged: dict[str, Any] = {key: 0 for key in _SUMMED}
    history: dict[str, float] = {}
    rate_limited: dict[str, dict[str, float]] = {}
    channels: dict[str, dict[str, int]] = {}
    topics: dict[str, int] = {}
    gateway: dict[str, dict[str, Any]] = {}
    for report in reports:
        for key in _SUMMED:
            merged[key] += report.get(key, 0)
        for name, value in report.get("history_per_s", {}).items():
            history[name] = history.get(name, 0.0) + value
        for scope, value in report.get("rate_limited", {}).items():
            entry = rate_limited.setdefault(scope, {"total": 0, "per_s": 0.0})
            entry["total"] += value["total"]
            entry["per_s"] += value["per_s"]
        for prefix, value in report.get("channels", {}).items():
            entry_c = channels.setdefault(prefix, {"subscribers": 0, "topics": 0})
            entry_c["subscribers"] += value["subscribers"]
        for topic, count in report.get("topics", []):
            topics[topic] = topics.get(topic, 0) + count
        for name, value in report.get("gateway", {}).items():
            entry_g = gateway.setdefault(name, {"calls": 0.0, "total": 0, "codes": {}, "buckets": {}})
            entry_g["calls"] += value["calls"]
            entry_g["total"] += value["total"]
            for code, count in value["codes"].items():
                entry_g["codes"][code] = entry_g["codes"].get(code, 0) + count
            for le, count in value["buckets"].items():
                entry_g["buckets"][le] = entry_g["buckets"].get(le, 0.0) + count
    for topic in topics:
        prefix = topic.partition(":")[0]
        if prefix in channels:
            channels[prefix]["topics"] += 1
    for key in _SUMMED:
        merged[key] = round(merged[key], 3)
    ordered = sorted(topics.items(), key=lambda item: (-item[1], item[0]))[:TOP_TOPICS]
    merged.update(
        history_per_s={name: round(value, 3) for name, value in history.items()},
        rate_limited=rate_limited,
        channels=channels,
        topics=[list(item) for item in ordered],
        gateway=gateway,
    )
    return merged


def latency(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The view of ``stats`` with each function's buckets replaced by p50/p99 in milliseconds."""
    gateway = {}
    for name, entry in stats.get("gateway", {}).items():
        buckets = {float(le): count for le, count in entry["buckets"].items()}
        p50, p99 = quantile(buckets, 0.5), quantile(buckets, 0.99)
        gateway[name] = {
            "calls_per_s": round(entry["calls"], 3),
            "total": entry["total"],
            "codes": entry["codes"],
            "p50_ms": None if p50 is None else round(p50 * 1000, 2),
            "p99_ms": None if p99 is None else round(p99 * 1000, 2),
        }
    return {**stats, "gateway": gateway}


def node_of(name: str) -> str:
    """The node a process belongs to: ``serve --workers N`` names its workers ``<node>/w<i>``."""
    return _WORKER.sub("", name)


def cluster_view(
    reports: Iterable[tuple[float, Mapping[str, Any]]],
    now: float,
    wall: float,
    *,
    stale_after: float,
    errors: int,
) -> dict[str, Any]:
    """Nodes, cluster totals and recent errors from ``(received_at, report)`` pairs.

    The processes of one node (its workers) are summed into one row. A process not heard from for
    more than ``stale_after`` seconds is left out of the figures; a node with none left is shown
    stale (its last figures, and how long it has been silent).
    """
    by_node: dict[str, list[tuple[float, Mapping[str, Any]]]] = {}
    for at, report in reports:
        by_node.setdefault(node_of(str(report["node"])), []).append((at, report))
    nodes = []
    fresh: list[Mapping[str, Any]] = []
    recent: list[dict[str, Any]] = []
    for name in sorted(by_node):
        group = by_node[name]
        last = max(at for at, _ in group)
        live = [report for at, report in group if now - at <= stale_after]
        members = live or [report for _, report in group]
        fresh.extend(report["stats"] for report in live)
        health: dict[str, str] = {}
        for report in members:
            for check, result in report.get("health", {}).items():
                if health.get(check, "ok") == "ok":
                    health[check] = result
        for _, report in group:
            process = str(report["node"])
            recent.extend({**error, "node": process} for error in report.get("errors", []))
        nodes.append(
            {
                "name": name,
                "version": members[0].get("version"),
                "workers": len(members),
                "uptime_s": round(wall - min(report["started_at"] for report in members)),
                "health": health,
                "draining": any(report.get("draining") for report in members),
                "stale_s": None if live else round(now - last, 1),
                "stats": latency(merge_stats([report["stats"] for report in members])),
            }
        )
    recent.sort(key=lambda error: float(error["at"]), reverse=True)
    return {"nodes": nodes, "totals": latency(merge_stats(fresh)), "errors": recent[:errors]}
