"""Sans-I/O pieces of HTTP semantics: entity tags, HTTP dates, preconditions, ``Accept`` matching.

Pure functions over header strings, so the resource layer stays a thin dispatcher and these rules
are tested on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Validators:
    """A representation's validators: a strong entity tag (without quotes) and its modification time."""

    etag: str
    last_modified: datetime | None = None

    @property
    def etag_header(self) -> str:
        return f'"{self.etag}"'

    @property
    def last_modified_header(self) -> str | None:
        return http_date(self.last_modified) if self.last_modified is not None else None


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(moment: datetime) -> str:
    """IMF-fixdate (RFC 9110 §5.6.7), e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    m = moment.astimezone(UTC)
    return (
        f"{_DAYS[m.weekday()]}, {m.day:02d} {_MONTHS[m.month - 1]} {m.year:04d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} GMT"
    )


def parse_http_date(value: str) -> datetime | None:
    """An IMF-fixdate (or the obsolete formats); ``None`` when it is not a valid HTTP date."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_etags(value: str) -> list[tuple[bool, str]] | None:
    """``If-Match``/``If-None-Match`` as ``[(weak, tag), ...]``; ``[]`` for ``*``; ``None`` if malformed."""
    value = value.strip()
    if value == "*":
        return []
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(value):
        match = _ENTITY_TAG.match(value, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return tags or None


def _matches(header: str, current: str | None, *, strong: bool) -> bool:
    tags = parse_etags(header)
    if tags is None:
        return False
    if not tags:  # "*": any current representation
        return current is not None
    if current is None:
        return False
    return any(tag == current and not (strong and weak) for weak, tag in tags)


def _seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def evaluate_preconditions(
    method: str,
    validators: Validators | None,
    *,
    if_match: str | None,
    if_unmodified_since: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> int | None:
    """RFC 9110 §13.2.2: ``412``, ``304`` or ``None`` to go on with the request."""
    etag = validators.etag if validators is not None else None
    modified = validators.last_modified if validators is not None else None
    if if_match is not None:
        if not _matches(if_match, etag, strong=True):
            return 412
    elif if_unmodified_since is not None and modified is not None:
        since = parse_http_date(if_unmodified_since)
        if since is not None and _seconds(modified) > since:
            return 412
    safe = method in ("GET", "HEAD")
    if if_none_match is not None:
        if _matches(if_none_match, etag, strong=False):
            return 304 if safe else 412
    elif safe and if_modified_since is not None and modified is not None:
        since = parse_http_date(if_modified_since)
        if since is not None and _seconds(modified) <= since:
            return 304
    return None


def _media_ranges(accept: str) -> list[tuple[str, str, float]]:
    ranges: list[tuple[str, str, float]] = []
    for item in accept.split(","):
        parts = [part.strip() for part in item.split(";")]
        if not parts[0]:
            continue
        kind, _, subtype = parts[0].lower().partition("/")
        quality = 1.0
        for parameter in parts[1:]:
            name, _, raw = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(raw.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((kind, subtype or "*", quality))
    return ranges


@lru_cache(maxsize=512)
def negotiate(accept: str, provided: tuple[str, ...]) -> str | None:
    """The provided media type the ``Accept`` header prefers, or ``None`` (406).

    Each provided type takes the quality of the most specific range that matches it
    (``application/json;q=0, */*`` excludes JSON).
    """
    ranges = _media_ranges(accept)
    if not ranges:
        return provided[0]
    best: tuple[float, str] | None = None
    for media_type in provided:
        kind, _, subtype = media_type.partition("/")
        specificity, quality = -1, 0.0
        for range_kind, range_subtype, range_quality in ranges:
            if range_kind == kind and range_subtype == subtype:
                rank = 2
            elif range_kind == kind and range_subtype == "*":
                rank = 1
            elif range_kind == "*" and range_subtype == "*":
                rank = 0
            else:
                continue
            if rank > specificity:
                specificity, quality = rank, range_quality
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, media_type)
    return best[1] if best is not None else None


def media_type_of(content_type: str) -> tuple[str, str | None]:
    """``(type/subtype, charset)`` of a ``Content-Type`` value, lowercased."""
    media_type, *parameters = content_type.split(";")
    charset = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media_type.strip().lower(), charset
