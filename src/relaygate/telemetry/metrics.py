"""Prometheus metrics of the whole node, one registry per process."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS: Final = Histogram.DEFAULT_BUCKETS[:-1]
"""Upper bounds (seconds) of the HTTP latency histogram, ``+Inf`` aside."""


class HttpMetrics(Collector):
    """``relaygate_http_requests_total`` and ``relaygate_http_request_duration_seconds``, counted in
    plain dicts and turned into metric families at scrape time: ``Counter.labels().inc()`` and
    ``Histogram.observe()`` take a lock per value and check observability per call, a tenth of a
    small request's cost in the framework. Counted on the event loop thread only."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], list[float]] = {}
        """Per (method, route): a count per bucket (not cumulative), then ``+Inf``, then the sum."""

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        counts = self.latency.get(key[:2])
        if counts is None:
            counts = self.latency[key[:2]] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "relaygate_http_requests", "HTTP requests", labels=["method", "route", "status"]
        )
        for (method, route, status), total in list(self.requests.items()):
            requests.add_metric([method, route, str(status)], total)
        latency = HistogramMetricFamily(
            "relaygate_http_request_duration_seconds", "HTTP request latency", labels=["method", "route"]
        )
        for labels, counts in list(self.latency.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=False):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric(list(labels), buckets, sum_value=counts[-1])
        yield requests
        yield latency

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily("relaygate_http_requests", "", labels=["method", "route", "status"])
        yield HistogramMetricFamily("relaygate_http_request_duration_seconds", "", labels=["method", "route"])


HTTP: Final = HttpMetrics()
REGISTRY.register(HTTP)
SOCKETS_OPEN = Gauge("relaygate_sockets_open", "Open channel sockets", registry=REGISTRY)
CHANNELS_JOINED = Gauge("relaygate_channels_joined", "Joined channels", ["prefix"], registry=REGISTRY)
CHANNEL_JOINS = Counter("relaygate_channel_joins_total", "Successful channel joins", registry=REGISTRY)
CHANNEL_MESSAGES = Counter(
    "relaygate_channel_messages_total", "Channel frames", ["direction"], registry=REGISTRY
)
SLOW_CONSUMERS = Counter(
    "relaygate_slow_consumer_closes_total", "Sockets closed for not keeping up", registry=REGISTRY
)
PUBSUB_BROADCASTS = Counter(
    "relaygate_pubsub_broadcasts_total", "PubSub broadcasts", ["direction"], registry=REGISTRY
)
PUBSUB_PUBLISH_LATENCY = Histogram(
    "relaygate_pubsub_publish_seconds", "Redis publish latency", registry=REGISTRY
)
PUBSUB_RECONNECTS = Counter("relaygate_pubsub_reconnects_total", "Redis reconnects", registry=REGISTRY)
HISTORY_APPENDS = Counter(
    "relaygate_history_appends_total", "Broadcasts appended to a topic's history", registry=REGISTRY
)
HISTORY_RECOVERIES = Counter(
    "relaygate_history_recoveries_total",
    "Joins that asked to recover (result: succeeded/failed; reason: why it failed)",
    ["result", "reason"],
    registry=REGISTRY,
)
HISTORY_REPLAYED = Counter(
    "relaygate_history_replayed_total",
    "Broadcasts replayed from history to a joining channel",
    registry=REGISTRY,
)
PRESENCE_ENTRIES = Gauge(
    "relaygate_presence_entries", "Presence entries tracked on this node", registry=REGISTRY
)
RATE_LIMIT_REJECTIONS = Counter(
    "relaygate_rate_limit_rejections_total", "Requests refused by a rate limit", ["scope"], registry=REGISTRY
)
MAIL_DELIVERIES = Counter("relaygate_mail_deliveries_total", "Mail deliveries", ["result"], registry=REGISTRY)
DB_POOL_CHECKED_OUT = Gauge("relaygate_db_pool_checked_out", "DB connections in use", registry=REGISTRY)
