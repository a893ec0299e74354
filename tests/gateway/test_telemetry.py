"""Every finished gateway call is a ``gateway.call`` OpenTelemetry span and a Prometheus count."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from relaygate.gateway import CallerContext, Gateway
from relaygate.protocol.gateway.codes import ServiceError
from relaygate.protocol.gateway.context import CallContext
from relaygate.telemetry.metrics import REGISTRY

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The process-wide tracer provider can be set once: this module installs an SDK one."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    yield _EXPORTER


async def test_calls_are_spans_with_their_outcome(exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    gateway = Gateway()

    async def hello(ctx: CallContext) -> str:
        return "hi"

    async def broken(ctx: CallContext) -> None:
        raise ServiceError("item_not_found", "nope")

    async def numbers(ctx: CallContext) -> AsyncIterator[int]:
        yield 1

    gateway.register_local("tele", "hello", hello, version="1.2.0")
    gateway.register_local("tele", "broken", broken)
    gateway.register_local("tele", "numbers", numbers, response_type="stream")
    caller = CallerContext(user_id="1", connection="c1")
    emitted: list[dict[str, Any]] = []

    async def emit(response: dict[str, Any]) -> None:
        emitted.append(response)

    before = REGISTRY.get_sample_value(
        "relaygate_gateway_calls_total",
        {"service": "tele", "request_type": "broken", "code": "item_not_found"},
    )
    for rid, request_type in (("r1", "hello"), ("r2", "broken"), ("r3", "numbers"), ("r4", "missing")):
        request = {"request_id": rid, "service": "tele", "request_type": request_type}
        await gateway.handle_request(request, caller, emit)
    for _ in range(100):
        if len(exporter.get_finished_spans()) >= 4:
            break
        await asyncio.sleep(0.01)
    await gateway.stop()
    spans = {
        span.attributes["relaygate.gateway.request_type"]: span for span in exporter.get_finished_spans()
    }
    hello_span = spans["hello"]
    assert hello_span.name == "gateway.call"
    assert dict(hello_span.attributes) == {
        "relaygate.gateway.service": "tele",
        "relaygate.gateway.request_type": "hello",
        "relaygate.gateway.version": "1.2.0",
        "relaygate.gateway.response_type": "sync",
        "relaygate.gateway.node": "local",
        "relaygate.gateway.code": "ok",
    }
    assert hello_span.status.status_code == StatusCode.UNSET
    assert hello_span.end_time >= hello_span.start_time
    assert spans["broken"].attributes["relaygate.gateway.code"] == "item_not_found"
    assert spans["broken"].status.status_code == StatusCode.ERROR
    assert spans["numbers"].attributes["relaygate.gateway.response_type"] == "stream"
    assert spans[""].attributes["relaygate.gateway.code"] == "not_found"  # no client-made names
    after = REGISTRY.get_sample_value(
        "relaygate_gateway_calls_total",
        {"service": "tele", "request_type": "broken", "code": "item_not_found"},
    )
    assert after == (before or 0) + 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_metrics_endpoint_serves_the_gateway_metrics(http: httpx.AsyncClient) -> None:
    gateway = Gateway()

    async def hello(ctx: CallContext) -> str:
        return "hi"

    gateway.register_local("scraped", "hello", hello)
    caller = CallerContext(user_id="1", connection="c1")
    for rid in ("m1", "m2"):
        assert (
            await gateway.handle_request(
                {"request_id": rid, "service": "scraped", "request_type": "hello"}, caller, _ignore
            )
        )["success"]
    text = (await http.get("/metrics")).text
    assert 'relaygate_gateway_calls_total{code="ok",request_type="hello",service="scraped"} 2.0' in text
    assert 'relaygate_gateway_call_seconds_count{request_type="hello",service="scraped"} 2.0' in text
    assert (
        'relaygate_gateway_call_seconds_bucket{le="+Inf",request_type="hello",service="scraped"} 2.0' in text
    )
    assert "relaygate_gateway_registry_changes_total" in text


async def _ignore(response: dict[str, Any]) -> None:
    """No async responses in these calls."""
