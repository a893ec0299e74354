"""The gateway response object (PhoenixGenApi's seven keys plus code, retry_after_ms and seq)."""

from __future__ import annotations

from typing import Any

from relaygate.protocol.gateway import codes


def make_response(
    request_id: str | None,
    *,
    result: Any = None,
    success: bool = True,
    error: str | None = None,
    is_async: bool = False,
    has_more: bool = False,
    code: str | None = None,
    can_retry: bool = False,
    retry_after_ms: int | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    """Build the one response shape every reply and push uses: always all ten keys."""
    return {
        "request_id": request_id,
        "result": result,
        "success": success,
        "error": error,
        "async": is_async,
        "has_more": has_more,
        "can_retry": can_retry,
        "code": code,
        "retry_after_ms": retry_after_ms,
        "seq": seq,
    }


def ok(request_id: str, result: Any) -> dict[str, Any]:
    """The final successful response of a call (built as a literal: one per call)."""
    return {
        "request_id": request_id,
        "result": result,
        "success": True,
        "error": None,
        "async": False,
        "has_more": False,
        "can_retry": False,
        "code": None,
        "retry_after_ms": None,
        "seq": None,
    }


def async_ack(request_id: str) -> dict[str, Any]:
    return make_response(request_id, is_async=True)


def stream_ack(request_id: str) -> dict[str, Any]:
    return make_response(request_id, result="init", is_async=True, has_more=True)


def stream_chunk(request_id: str, seq: int, chunk: Any) -> dict[str, Any]:
    return make_response(request_id, result=chunk, is_async=True, has_more=True, seq=seq)


def stream_end(request_id: str) -> dict[str, Any]:
    """The terminal response of a stream that completed (no more chunks)."""
    return make_response(request_id, is_async=True)


class GatewayError(Exception):
    """A call ends with an error response; ``business`` marks a function's own :class:`ServiceError`."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        result: Any = None,
        retry_after_ms: int | None = None,
        business: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.result = result
        self.retry_after_ms = retry_after_ms
        self.business = business

    def to_response(self, request_id: str | None, *, is_async: bool = False) -> dict[str, Any]:
        return make_response(
            request_id,
            result=self.result,
            success=False,
            error=self.message,
            is_async=is_async,
            code=self.code,
            can_retry=codes.can_retry(self.code, business=self.business),
            retry_after_ms=self.retry_after_ms,
        )
