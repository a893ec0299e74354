"""What the executor needs from the cluster to run a call on a service node.

The Redis implementation is :class:`relaygate.gateway.cluster.RedisCluster`; the executor only
sees live nodes per function and per-call reply streams, so tests and other transports can
plug in.
"""

from __future__ import annotations

import abc
from typing import Any

from relaygate.protocol.gateway.functions import FunctionKey


class NodeLost(Exception):
    """The node could not be reached, died, or refused the call before answering (retryable)."""


class RemoteCall(abc.ABC):
    """One attempt of a call on one node: replies arrive in order until a final one."""

    node: str

    @abc.abstractmethod
    async def receive(self) -> dict[str, Any]:
        """The next reply message (callers bound the wait); raises :class:`NodeLost`."""

    @abc.abstractmethod
    async def grant(self, credits: int) -> None:
        """Let a streaming producer send ``credits`` more chunks."""

    @abc.abstractmethod
    def close(self, *, cancel: bool) -> None:
        """Stop listening; with ``cancel``, tell the node to stop the call (best effort)."""


class Transport(abc.ABC):
    @abc.abstractmethod
    def live_nodes(self, key: FunctionKey) -> list[str]:
        """Names of the live, non-draining nodes that serve ``key``."""

    @abc.abstractmethod
    async def call(self, node: str, message: dict[str, Any]) -> RemoteCall:
        """Send a call message to ``node``; raises :class:`NodeLost` if it cannot be sent."""
