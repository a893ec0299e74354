"""Gateway telemetry: Prometheus metrics (the node's ``/metrics``) and an OpenTelemetry span per call.

Spans go through the ``opentelemetry-api`` global tracer provider: without an SDK configured by
the application they cost nothing; with one, every finished call is a ``gateway.call`` span.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from relaygate.telemetry.metrics import REGISTRY

RETRIES: Final = Counter(
    "relaygate_gateway_retries_total",
    "Attempts on another node",
    ["service", "request_type"],
    registry=REGISTRY,
)
RATE_LIMITED: Final = Counter(
    "relaygate_gateway_rate_limited_total",
    "Requests rejected by a rate limit",
    ["service", "request_type"],
    registry=REGISTRY,
)
STREAM_CHUNKS: Final = Counter(
    "relaygate_gateway_stream_chunks_total",
    "Stream chunks delivered",
    ["service", "request_type"],
    registry=REGISTRY,
)
REGISTRY_CHANGES: Final = Counter(
    "relaygate_gateway_registry_changes_total", "Registry changes", ["kind"], registry=REGISTRY
)
NODE_EVENTS: Final = Counter(
    "relaygate_gateway_node_events_total", "Service nodes going up or down", ["event"], registry=REGISTRY
)

CALL_LABELS: Final = ["service", "request_type", "code"]
BUCKETS: Final = Histogram.DEFAULT_BUCKETS[:-1]
"""Upper bounds (seconds) of the call latency histogram, ``+Inf`` aside."""


class _CallMetrics(Collector):
    """``relaygate_gateway_calls_total`` and ``relaygate_gateway_call_seconds``, counted in plain
    :class:`CallStats` and turned into metric families at scrape time: ``Counter.labels().inc()``
    and ``Histogram.observe()`` lock and allocate on every call, which cost more than a local call."""

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "relaygate_gateway_calls", "Gateway calls by function and result code", labels=CALL_LABELS
        )
        latency = HistogramMetricFamily(
            "relaygate_gateway_call_seconds",
            "Gateway call latency (until the final response)",
            labels=CALL_LABELS[:2],
        )
        for stats in list(_STATS.values()):
            if not stats.counts:  # never called: no series
                continue
            names = (stats.service, stats.request_type)
            for code, total in list(stats.counts.items()):
                calls.add_metric((*names, code), total)
            cumulative, buckets = 0.0, []
            for bound, count in zip((*BUCKETS, float("inf")), stats.latency, strict=False):
                cumulative += count
                buckets.append((_bound_text(bound), cumulative))
            latency.add_metric(names, buckets, sum_value=stats.latency[-1])
        yield calls
        yield latency

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily("relaygate_gateway_calls", "", labels=CALL_LABELS)
        yield HistogramMetricFamily("relaygate_gateway_call_seconds", "", labels=CALL_LABELS[:2])


REGISTRY.register(_CallMetrics())


def _bound_text(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


_TRACER: Final = trace.get_tracer("relaygate.gateway")
_PROVIDER_FROM_ENV: Final = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def _tracing() -> bool:
    """Whether an OpenTelemetry SDK provider is installed (without one every span is a no-op).

    ``get_tracer_provider()`` reads ``os.environ`` on every call until a provider is set, which
    costs more than the rest of the call's telemetry: read the API's global first."""
    if not _PROVIDER_FROM_ENV and getattr(trace, "_TRACER_PROVIDER", True) is None:
        return False
    return type(trace.get_tracer_provider()) is not ProxyTracerProvider


_CHUNK_CHILDREN: dict[tuple[str, str], Any] = {}


def count_chunk(service: str, request_type: str) -> None:
    """One stream chunk delivered (the labelled child is looked up once per function)."""
    key = (service, request_type)
    child = _CHUNK_CHILDREN.get(key)
    if child is None:
        child = _CHUNK_CHILDREN[key] = STREAM_CHUNKS.labels(service, request_type)
    child.inc()


class CallStats:
    """The finished calls of one (service, request_type): a count per result code, and the
    latency histogram (a count per bucket, not cumulative, then ``+Inf``, then the sum). Get it
    with :func:`stats_for`."""

    __slots__ = ("counts", "latency", "request_type", "service")

    def __init__(self, service: str, request_type: str) -> None:
        self.service = service
        self.request_type = request_type
        self.counts: dict[str, int] = {}
        self.latency = [0.0] * (len(BUCKETS) + 2)

    def record(
        self,
        code: str | None,
        started: float,
        version: str | None = None,
        response_type: str | None = None,
        node: str | None = None,
    ) -> None:
        """Count one finished call and record its span (``started`` is a ``perf_counter`` reading)."""
        elapsed = time.perf_counter() - started
        if code is None:
            code = "ok"
        counts = self.counts
        counts[code] = counts.get(code, 0) + 1
        latency = self.latency
        latency[bisect_left(BUCKETS, elapsed)] += 1
        latency[-1] += elapsed
        if (_PROVIDER_FROM_ENV or trace._TRACER_PROVIDER is not None) and _tracing():
            _span(self, code, elapsed, version, response_type, node)


_STATS: dict[tuple[str, str], CallStats] = {}


def stats_for(service: str | None, request_type: str | None) -> CallStats:
    """The shared :class:`CallStats` of a function's names (empty names: an unresolved request)."""
    names = (service or "", request_type or "")
    stats = _STATS.get(names)
    if stats is None:
        stats = _STATS[names] = CallStats(*names)
    return stats


def record_call(
    service: str | None,
    request_type: str | None,
    code: str | None,
    started: float,
    *,
    version: str | None = None,
    response_type: str | None = None,
    node: str | None = None,
) -> None:
    """Count one finished call and record its span (``started`` is a ``perf_counter`` reading).

    Unresolved requests are labelled with empty names (no client-made label values).
    """
    stats_for(service, request_type).record(code, started, version, response_type, node)


def _span(
    stats: CallStats,
    code: str,
    elapsed: float,
    version: str | None,
    response_type: str | None,
    node: str | None,
) -> None:
    end_ns = time.time_ns()
    attributes = {
        "relaygate.gateway.service": stats.service,
        "relaygate.gateway.request_type": stats.request_type,
        "relaygate.gateway.version": version or "",
        "relaygate.gateway.response_type": response_type or "",
        "relaygate.gateway.node": node or "",
        "relaygate.gateway.code": code,
    }
    span = _TRACER.start_span(
        "gateway.call", kind=SpanKind.SERVER, start_time=end_ns - int(elapsed * 1e9), attributes=attributes
    )
    if code != "ok":
        span.set_status(Status(StatusCode.ERROR, code))
    span.end(end_time=end_ns)
