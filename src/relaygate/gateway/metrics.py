"""Gateway telemetry: Prometheus metrics (the node's ``/metrics``) and an OpenTelemetry span per call.

Spans go through the ``opentelemetry-api`` global tracer provider: without an SDK configured by
the application they cost nothing; with one, every finished call is a ``gateway.call`` span.
"""

from __future__ import annotations

import time
from typing import Final

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
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


_TRACER: Final = trace.get_tracer("relaygate.gateway")


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
    elapsed = time.perf_counter() - started
    CALLS.labels(service or "", request_type or "", code or "ok").inc()
    DURATION.labels(service or "", request_type or "").observe(elapsed)
    end_ns = time.time_ns()
    attributes = {
        "relaygate.gateway.service": service or "",
        "relaygate.gateway.request_type": request_type or "",
        "relaygate.gateway.version": version or "",
        "relaygate.gateway.response_type": response_type or "",
        "relaygate.gateway.node": node or "",
        "relaygate.gateway.code": code or "ok",
    }
    span = _TRACER.start_span(
        "gateway.call", kind=SpanKind.SERVER, start_time=end_ns - int(elapsed * 1e9), attributes=attributes
    )
    if code is not None:
        span.set_status(Status(StatusCode.ERROR, code))
    span.end(end_time=end_ns)
