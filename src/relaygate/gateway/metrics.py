"""Prometheus metrics of the gateway (exposed by the node's ``/metrics`` from the default registry)."""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import Counter, Histogram

CALLS: Final = Counter(
    "relaygate_gateway_calls_total",
    "Gateway calls by function and result code",
    ["service", "request_type", "code"],
)
DURATION: Final = Histogram(
    "relaygate_gateway_call_seconds",
    "Gateway call latency (until the final response)",
    ["service", "request_type"],
)
RETRIES: Final = Counter(
    "relaygate_gateway_retries_total", "Attempts on another node", ["service", "request_type"]
)
RATE_LIMITED: Final = Counter(
    "relaygate_gateway_rate_limited_total", "Requests rejected by a rate limit", ["service", "request_type"]
)
STREAM_CHUNKS: Final = Counter(
    "relaygate_gateway_stream_chunks_total", "Stream chunks delivered", ["service", "request_type"]
)
REGISTRY_CHANGES: Final = Counter("relaygate_gateway_registry_changes_total", "Registry changes", ["kind"])
NODE_EVENTS: Final = Counter(
    "relaygate_gateway_node_events_total", "Service nodes going up or down", ["event"]
)


def record_call(service: str | None, request_type: str | None, code: str | None, started: float) -> None:
    """Count one finished call; unresolved requests are labelled with empty names."""
    CALLS.labels(service or "", request_type or "", code or "ok").inc()
    DURATION.labels(service or "", request_type or "").observe(time.perf_counter() - started)
