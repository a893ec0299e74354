"""Sans-I/O presence state: entries grouped per topic and key, and the diffs their changes produce.

Both adapters keep one :class:`PresenceTable` (the memory adapter as the only copy, the Redis
adapter as this node's mirror of the cluster state) so that ``list``, ``get_by_key`` and the
``presence_diff`` payloads are computed by the same code everywhere.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

Meta = dict[str, Any]


_REFS_PER_DRAW = 256
_refs: list[str] = []


def new_ref() -> str:
    """A fresh phx_ref: url-safe base64 of 12 random bytes (16 chars), as phoenix_pubsub makes them.

    The bytes come from the OS 256 refs at a time (a ``getrandom`` per ref cost more than the
    rest of a track); a forked child drops what its parent drew, so no two processes share one."""
    if not _refs:  # 12 bytes are 16 base64 chars exactly: encode the draw once, then cut
        text = base64.urlsafe_b64encode(os.urandom(12 * _REFS_PER_DRAW)).decode("ascii")
        _refs.extend(text[i : i + 16] for i in range(0, len(text), 16))
    return _refs.pop()


os.register_at_fork(after_in_child=_refs.clear)


@dataclass(slots=True)
class Entry:
    """One tracked (owner, topic, key): ``meta`` carries ``phx_ref``; ``seq`` orders the metas of a key.

    Never changed once made (a change is a new Entry); not frozen only because a frozen
    dataclass costs ~3 µs to create against ~0.6, once per track and per store echo.
    """

    topic: str
    key: str
    meta: Meta
    seq: int


class Diffs:
    """Joins and leaves per topic, in ``presence_diff`` shape, merged so that applying the result
    once equals applying every recorded change in order (the coalescing window relies on it).

    A meta is identified by its key and ``phx_ref`` (as presence.js identifies it): only its last
    change counts, a join (the meta is present afterwards) or a leave (absent afterwards). Both
    kinds stay in the result even when a join and a leave of one meta cancel out, because a client
    may have listed that meta in a ``presence_state`` taken in between; a leave of a meta a client
    never saw is a no-op in presence.js.
    """

    def __init__(self) -> None:
        self._topics: dict[str, dict[tuple[str, Any], tuple[bool, Entry]]] = {}
        self._fresh: list[str] = []

    def join(self, entry: Entry) -> None:
        self._record(entry, True)

    def leave(self, entry: Entry) -> None:
        self._record(entry, False)

    def _record(self, entry: Entry, joined: bool) -> None:
        changes = self._topics.get(entry.topic)
        if changes is None:
            changes = self._topics[entry.topic] = {}
            self._fresh.append(entry.topic)
        ident = (entry.key, entry.meta.get("phx_ref"))
        changes.pop(ident, None)  # the latest change goes last, so a payload lists changes in order
        changes[ident] = (joined, entry)

    def merge(self, later: Diffs) -> None:
        """Add the changes of ``later`` (recorded after this one's) as if recorded here."""
        for changes in later._topics.values():
            for joined, entry in changes.values():
                self._record(entry, joined)

    def fresh(self) -> list[str]:
        """The topics that got their first change since the last call (a window to open each)."""
        fresh, self._fresh = self._fresh, []
        return fresh

    def pop(self, topic: str) -> dict[str, Any] | None:
        """The ``presence_diff`` payload of one topic, removed from this collection (None if none)."""
        changes = self._topics.pop(topic, None)
        return None if changes is None else _payload(changes)

    def __bool__(self) -> bool:
        return bool(self._topics)

    def payloads(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(topic, {"joins": {...}, "leaves": {...}})`` per changed topic; both keys always present."""
        for topic, changes in self._topics.items():
            yield topic, _payload(changes)


def _payload(changes: Mapping[tuple[str, Any], tuple[bool, Entry]]) -> dict[str, Any]:
    joins: dict[str, list[Entry]] = {}
    leaves: dict[str, list[Entry]] = {}
    for joined, entry in changes.values():
        (joins if joined else leaves).setdefault(entry.key, []).append(entry)
    return {"joins": _grouped(joins), "leaves": _grouped(leaves)}


def _grouped(by_key: Mapping[str, list[Entry]]) -> dict[str, dict[str, Any]]:
    return {
        key: {
            "metas": [dict(entries[0].meta)]
            if len(entries) == 1
            else [dict(e.meta) for e in sorted(entries, key=_seq)]
        }
        for key, entries in by_key.items()
    }


def _seq(entry: Entry) -> int:
    return entry.seq


class _Encoded:
    """A topic's list as :meth:`PresenceTable.state` keeps it: every key's ``"key":{"metas":[...]},``
    in one buffer after "{". A changed key's bytes are blanked with spaces (JSON allows them between
    members) and its new bytes appended; once a quarter of the buffer is blank it is rebuilt. A
    join to a room of N thus costs a copy of the buffer, where joining N cached fragments cost
    a step per key (4 µs at 100 keys, ~200 µs at 5,000)."""

    __slots__ = ("blank", "buffer", "dirty", "spans")

    def __init__(self) -> None:
        self.buffer = bytearray(b"{")
        self.spans: dict[str, tuple[int, int]] = {}
        """key -> (start, size) in ``buffer``; in buffer order (a key put again goes last)."""
        self.blank = 0
        self.dirty: set[str] = set()
        """Keys changed since the buffer was last brought up to date."""

    def put(self, key: str, fragment: bytes | None) -> None:
        """Blank the key's old bytes; append ``fragment`` (None: the key is gone)."""
        span = self.spans.pop(key, None)
        buffer = self.buffer
        if span is not None:
            start, size = span
            buffer[start : start + size] = b" " * size  # same size: in place
            self.blank += size
        if fragment is not None:
            self.spans[key] = (len(buffer), len(fragment) + 1)
            buffer += fragment
            buffer += b","

    def compact(self) -> None:
        buffer, compacted, spans = self.buffer, bytearray(b"{"), {}
        for key, (start, size) in self.spans.items():
            spans[key] = (len(compacted), size)
            compacted += buffer[start : start + size]
        self.buffer, self.spans, self.blank = compacted, spans, 0

    def encoded(self) -> bytes:
        """``{...}``: one copy of the buffer up to the last key, whose "," is "}" meanwhile."""
        if self.blank * 4 > len(self.buffer):
            self.compact()
        if not self.spans:
            return b"{}"
        start, size = next(reversed(self.spans.values()))
        end = start + size
        buffer = self.buffer
        buffer[end - 1] = 0x7D  # "}"
        try:
            with memoryview(buffer) as view:  # released before the buffer may grow again
                return bytes(view[:end])
        finally:
            buffer[end - 1] = 0x2C  # ","


class PresenceTable:
    """Entries by id, indexed per topic and key; every change records its joins and leaves in a Diffs."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._topics: dict[str, dict[str, dict[str, Entry]]] = {}
        self._encoded: dict[str, _Encoded] = {}
        """Per topic whose state was asked for, its encoded keys (see :class:`_Encoded`)."""
        self._states: dict[str, bytes] = {}
        """Per topic, the encoded list while the topic is unchanged."""

    def _touch(self, topic: str, key: str) -> None:
        self._states.pop(topic, None)
        encoded = self._encoded.get(topic)
        if encoded is not None:
            dirty = encoded.dirty
            dirty.add(key)
            if len(dirty) > len(self._topics.get(topic, ())) + 64:  # state() not asked for a while
                del self._encoded[topic]

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, entry_id: str) -> Entry | None:
        return self._entries.get(entry_id)

    def keys_on(self, topic: str) -> int:
        """How many keys are listed on the topic (the room's size, as its members see it)."""
        return len(self._topics.get(topic, ()))

    def entries(self) -> Mapping[str, Entry]:
        return self._entries

    def put(self, entry_id: str, entry: Entry, diffs: Diffs) -> None:
        """Insert or replace; a replacement is a leave of the old meta plus a join of the new one.

        The same meta stored again under another ``seq`` (an entry re-asserted after a Redis
        restart) changes nothing a client can see, so it records no diff: a diff holding the same
        phx_ref in both joins and leaves would make clients drop the meta (joins apply first).
        """
        old = self._entries.get(entry_id)
        if old == entry:
            return
        if old is not None and (old.topic, old.key, old.meta) == (entry.topic, entry.key, entry.meta):
            self._entries[entry_id] = self._topics[entry.topic][entry.key][entry_id] = entry
            self._touch(entry.topic, entry.key)  # the order of the key's metas may change
            return
        if old is not None:
            self.remove(entry_id, diffs)
        self._touch(entry.topic, entry.key)
        self._entries[entry_id] = entry
        self._topics.setdefault(entry.topic, {}).setdefault(entry.key, {})[entry_id] = entry
        diffs.join(entry)

    def reseq(self, entry_id: str, seq: int) -> None:
        """Give an entry its ordering number (no client sees that: no diff)."""
        old = self._entries.get(entry_id)
        if old is not None and old.seq != seq:
            entry = Entry(old.topic, old.key, old.meta, seq)
            self._entries[entry_id] = self._topics[entry.topic][entry.key][entry_id] = entry
            self._touch(entry.topic, entry.key)

    def remove(self, entry_id: str, diffs: Diffs) -> Entry | None:
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return None
        keys = self._topics[entry.topic]
        ids = keys[entry.key]
        del ids[entry_id]
        self._touch(entry.topic, entry.key)
        if not ids:
            del keys[entry.key]
            if not keys:
                del self._topics[entry.topic]
                self._encoded.pop(entry.topic, None)
        diffs.leave(entry)
        return entry

    def replace_all(self, entries: Mapping[str, Entry], diffs: Diffs) -> None:
        """Make the table equal to ``entries`` (a snapshot), recording only what actually changed."""
        for entry_id in [i for i in self._entries if i not in entries]:
            self.remove(entry_id, diffs)
        for entry_id, entry in entries.items():
            self.put(entry_id, entry, diffs)

    def list(self, topic: str) -> dict[str, dict[str, Any]]:
        """``{key: {"metas": [...]}}`` with metas in tracking order (fresh dicts, safe to mutate)."""
        return _grouped({key: list(ids.values()) for key, ids in self._topics.get(topic, {}).items()})

    def state(self, topic: str) -> bytes:
        """``list(topic)`` as JSON, encoded once per change of the topic and re-encoded only for
        the keys that changed: a join to a room of N sends the N-entry list, and building it
        must cost neither N dicts nor a Python step per key (see :class:`_Encoded`). The JSON
        may hold spaces between keys."""
        state = self._states.get(topic)
        if state is not None:
            return state
        keys = self._topics.get(topic)
        if not keys:
            return b"{}"
        encoded = self._encoded.get(topic)
        stale: Iterable[str]
        if encoded is None:
            encoded = self._encoded[topic] = _Encoded()
            stale = keys
        else:
            stale, encoded.dirty = encoded.dirty, set()
        for key in stale:
            ids = keys.get(key)
            fragment = None
            if ids:
                entries = list(ids.values())
                if len(entries) > 1:
                    entries.sort(key=_seq)
                fragment = orjson.dumps({key: {"metas": [e.meta for e in entries]}})[1:-1]
            encoded.put(key, fragment)
        state = self._states[topic] = encoded.encoded()
        return state

    def get_by_key(self, topic: str, key: str) -> dict[str, Any] | None:
        ids = self._topics.get(topic, {}).get(key)
        if not ids:
            return None
        return {"metas": [dict(e.meta) for e in sorted(ids.values(), key=_seq)]}
