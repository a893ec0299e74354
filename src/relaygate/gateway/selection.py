"""Choosing the node that runs a call: random, per-function round robin, or rendezvous hashing.

Rendezvous (highest random weight) hashing gives each key the node with the highest
``hash(node, key)``, so adding or removing a node only moves that node's share of keys.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from relaygate.protocol.gateway.functions import FunctionKey
from relaygate.protocol.gateway.options import NodeMode


def _weight(node: str, key: bytes) -> int:
    digest = hashlib.blake2b(node.encode() + b"\x00" + key, digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous(nodes: Sequence[str], key: str) -> str:
    """The node with the highest weight for ``key`` (``nodes`` must not be empty)."""
    raw = key.encode()
    return max(nodes, key=lambda node: _weight(node, raw))


def hash_key(value: Any) -> str:
    """A stable text for any JSON value, so ``1`` and ``"1"`` hash apart."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class NodeSelector:
    """Holds the per-function round-robin counters of one gateway node."""

    def __init__(self) -> None:
        self._counters: dict[FunctionKey, int] = {}

    def choose(
        self,
        mode: NodeMode,
        function: FunctionKey,
        nodes: Sequence[str],
        *,
        request_id: str,
        args: Mapping[str, Any],
        user_id: str | None,
    ) -> str | None:
        """Pick one of ``nodes`` (None when there is none)."""
        if not nodes:
            return None
        if mode.kind == "random":
            return random.choice(nodes)
        if mode.kind == "round_robin":
            ordered = sorted(nodes)
            count = self._counters.get(function, 0)
            self._counters[function] = count + 1
            return ordered[count % len(ordered)]
        if mode.kind == "hash":
            return rendezvous(nodes, request_id)
        if mode.arg is None:  # sticky on the caller
            return rendezvous(nodes, hash_key(user_id))
        return rendezvous(nodes, hash_key(args.get(mode.arg)))
