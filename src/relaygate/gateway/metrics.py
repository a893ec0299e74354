"""Gateway telemetry: Prometheus metrics (the node's ``/metrics``) and an OpenTelemetry span per call.

Spans go through the ``opentelemetry-api`` global tracer provider: without an SDK configured by
the application they cost nothing; with one, every finished call is a ``gateway.call`` span.
"""

from __future__ import annotations

import os
import time
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
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
_CALL_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}
"""(service, request_type, code) -> (calls counter, duration histogram) children: ``labels()``
costs more than the call it counts. Keys are registered names and result codes only."""


_PROVIDER_FROM_ENV: Final = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def _tracing() -> bool:
    """Whether an OpenTelemetry SDK provider is installed (without one every span is a no-op).

    ``get_tracer_provider()`` reads ``os.environ`` on every call until a provider is set, which
    costs more than the rest of the call's telemetry: read the API's global first."""
    if not _PROVIDER_FROM_ENV and getattr(trace, "_TRACER_PROVIDER", True) is None:
        return False
    return type(trace.get_tracer_provider()) is not ProxyTracerProvider


def _children(service: str, request_type: str, code: str) -> tuple[Any, Any]:
    key = (service, request_type, code)
    children = _CALL_CHILDREN.get(key)
    if children is None:
        children = _CALL_CHILDREN[key] = (
            CALLS.labels(service, request_type, code),
            DURATION.labels(service, request_type),
        )
    return children


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
    calls, duration = _children(service or "", request_type or "", code or "ok")
    calls.inc()
    duration.observe(elapsed)
    if not _tracing():
        return
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
