"""Field types for request bodies that the strict JSON validation of the resource layer accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator


def _from_iso(value: Any) -> Any:
    """JSON has no date type: an RFC 3339 string becomes a ``datetime`` before strict validation."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z") from None
    return value


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_from_iso)]
"""A date-time with a UTC offset, sent as an RFC 3339 string (``2024-05-01T12:00:00Z``)."""


def iso(moment: datetime) -> str:
    """The RFC 3339 form of an aware ``datetime`` in UTC, microseconds kept when present."""
    text = moment.isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
