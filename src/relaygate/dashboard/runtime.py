"""The dashboard's node side: reports while watched, cluster views for this node's viewers.

Nodes talk over one PubSub topic (:data:`CONTROL`; Redis in a cluster, memory on one node):

- a node with viewers broadcasts ``watch`` once a second; every node that hears it reports for
  the next :data:`WATCH_TTL` seconds: ``report`` (its metrics, health and recent errors) once a
  second, then stops by itself when the watch is not renewed;
- the watching node keeps the latest report of each node and pushes the merged view to its
  viewers (``snapshot`` on :data:`TOPIC`).

Nobody watching costs one idle subscription and a log handler that appends warnings to a ring.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import prometheus_client

from relaygate import __version__
from relaygate.dashboard.errors import RecentErrors
from relaygate.dashboard.samples import Sample, cluster_view, node_stats, read_sample
from relaygate.pubsub import Broadcast, PubSub
from relaygate.telemetry.metrics import REGISTRY

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from relaygate.channels import Endpoint
    from relaygate.config import Settings
    from relaygate.db import Database
    from relaygate.gateway import GatewayAdmin
    from relaygate.presence import Presence

log = logging.getLogger("relaygate.dashboard")

CONTROL: Final = "relaygate:dashboard"
"""The PubSub topic between nodes (``watch`` beacons, ``report`` messages); no socket can join it."""
TOPIC: Final = "admin:dashboard"
"""The channel topic viewers join."""
TICK: Final = 1.0
WATCH_TTL: Final = 3.0
WINDOW: Final = 5.0
"""Rates and latency quantiles are over the last few seconds."""
STALE_AFTER: Final = 3.5
FORGET_AFTER: Final = 30.0
PROBE_TIMEOUT: Final = 1.0
MAX_PRESENCES: Final = 500
ERRORS_SHOWN: Final = 30
REGISTRIES: Final = (REGISTRY, prometheus_client.REGISTRY)
"""What ``/metrics`` serves, and the default registry (process figures, gateway metrics)."""


class DashboardHost(Protocol):
    """The parts of a node the dashboard reads (``relaygate.node.Node`` has them)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def pubsub(self) -> PubSub: ...

    @property
    def presence(self) -> Presence: ...

    @property
    def gateway_admin(self) -> GatewayAdmin: ...

    @property
    def db(self) -> Database: ...

    @property
    def redis(self) -> Redis | None: ...

    @property
    def endpoint(self) -> Endpoint: ...


class _Control:
    """The :data:`CONTROL` subscriber; ``deliver`` must not block, so it only flips state."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        payload = message.payload
        if isinstance(payload, dict) and (payload.get("node"), payload.get("pid")) != self.dashboard.identity:
            self.dashboard.own_in += 1  # came through Redis (a node's own broadcasts are delivered locally)
        if message.event == "watch":
            self.dashboard.watched()
        elif message.event == "report" and isinstance(message.payload, dict):
            self.dashboard.received(message.payload)


class Dashboard:
    """One per node: started and stopped with it, mounted as ``/dashboard`` and its socket."""

    def __init__(self, host: DashboardHost) -> None:
        self.host = host
        self.name = host.settings.node
        self.identity = (self.name, os.getpid())
        self.started_at = time.time()
        self.errors = RecentErrors()
        self._control = _Control(self)
        self._viewers = 0
        self._watched_until = 0.0
        self._subscribing: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._samples: deque[Sample] = deque()
        self._reports: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}
        self._dispatched = 0
        self._delivered = 0
        self.own_in = 0
        self.own_out = 0
        """Messages of the dashboard itself over :data:`CONTROL`, left out of the PubSub rates."""
        self.view: dict[str, Any] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for watch beacons; in a cluster the subscription completes whenever Redis answers
        (a node starts without Redis, as ``/readyz`` reports)."""
        logging.getLogger("relaygate").addHandler(self.errors)
        self._subscribing = asyncio.get_running_loop().create_task(
            self.host.pubsub.subscribe(CONTROL, self._control), name="dashboard-subscribe"
        )

    async def stop(self) -> None:
        logging.getLogger("relaygate").removeHandler(self.errors)
        tasks = [t for t in (self._subscribing, self._reporter, self._pusher) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.host.pubsub.unsubscribe(CONTROL, self._control)

    # --- reporting (every node, while some node watches) ---------------------------------------

    def watched(self) -> None:
        """A ``watch`` beacon: report for the next :data:`WATCH_TTL` seconds."""
        self._watched_until = time.monotonic() + WATCH_TTL
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(self._report_while_watched())

    async def _report_while_watched(self) -> None:
        pubsub = self.host.pubsub
        pubsub.on_dispatch = self._count_dispatch
        try:
            while time.monotonic() < self._watched_until:
                try:
                    self.own_out += 1
                    await pubsub.broadcast(CONTROL, "report", await self.report())
                except Exception as exc:  # Redis away: the next beacon or tick retries
                    log.warning("dashboard report not sent (%s)", type(exc).__name__)
                await asyncio.sleep(TICK)
        finally:
            if pubsub.on_dispatch == self._count_dispatch:
                pubsub.on_dispatch = None
            self._samples.clear()
            self._reporter = None

    def _count_dispatch(self, message: Broadcast, delivered: int) -> None:
        if message.topic == CONTROL or message.topic == TOPIC:  # the dashboard's own traffic
            return
        self._dispatched += 1
        self._delivered += delivered

    async def report(self) -> dict[str, Any]:
        """This node now: identity, health, metrics over the last :data:`WINDOW` s, recent errors."""
        now = time.monotonic()
        own = {"own_pubsub_in": float(self.own_in), "own_pubsub_out": float(self.own_out)}
        extra = {"messages_out": float(self._delivered), "broadcasts": float(self._dispatched), **own}
        sample = read_sample(REGISTRIES, now, extra)
        while self._samples and now - self._samples[0].at > WINDOW:
            self._samples.popleft()
        oldest = self._samples[0] if self._samples else None
        self._samples.append(sample)
        return {
            "node": self.name,
            "pid": os.getpid(),
            "version": __version__,
            "started_at": self.started_at,
            "draining": self.host.endpoint.draining,
            "health": await self._health(),
            "errors": self.errors.latest(ERRORS_SHOWN),
            "stats": node_stats(oldest, sample, self.host.pubsub.topic_counts()),
        }

    async def _health(self) -> dict[str, str]:
        probes: dict[str, Callable[[], Awaitable[Any]]] = {"database": self.host.db.ping}
        if self.host.redis is not None:
            probes["redis"] = self.host.redis.ping

        async def check(probe: Callable[[], Awaitable[Any]]) -> str:
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT)
                return "ok"
            except Exception as exc:
                return f"error: {type(exc).__name__}"

        results = await asyncio.gather(*(check(probe) for probe in probes.values()))
        return dict(zip(probes, results, strict=True))

    # --- viewing (a node with joined viewers) --------------------------------------------------

    def received(self, report: dict[str, Any]) -> None:
        """Keep a node's latest report while someone watches (one that lacks a part is ignored)."""
        valid = isinstance(report.get("stats"), dict) and isinstance(report.get("started_at"), int | float)
        if self._viewers > 0 and valid and isinstance(report.get("pid"), int):
            self._reports[(str(report.get("node")), int(report.get("pid", 0)))] = (time.monotonic(), report)

    async def viewer_joined(self) -> dict[str, Any]:
        """A viewer joined: start watching (if not yet) and answer the current view."""
        self._viewers += 1
        if self._pusher is None:
            self._pusher = asyncio.get_running_loop().create_task(self._push_while_viewed())
            self.received(await self.report())
            await self._beacon()
        if self.view is None or self._viewers == 1:
            self.view = await self.build_view()
        return self.view

    def viewer_left(self) -> None:
        self._viewers = max(0, self._viewers - 1)

    async def _beacon(self) -> None:
        try:
            self.own_out += 1
            await self.host.pubsub.broadcast(CONTROL, "watch", {"node": self.name, "pid": os.getpid()})
        except Exception as exc:
            log.warning("dashboard watch beacon not sent (%s)", type(exc).__name__)

    async def _push_while_viewed(self) -> None:
        try:
            while self._viewers > 0:
                await asyncio.sleep(TICK)
                if self._viewers == 0:
                    break
                await self._beacon()
                try:
                    self.view = await self.build_view()
                except Exception:  # a bad report must not end the viewers' updates
                    log.exception("dashboard view failed")
                    continue
                self.host.pubsub.local_broadcast(TOPIC, "snapshot", self.view)
        finally:
            self._pusher = None
            self._reports.clear()
            self.view = None

    async def snapshot(self) -> dict[str, Any]:
        """The view viewers see now; with no viewer, a view of this node alone (``GET /dashboard``)."""
        if self.view is not None:
            return self.view
        return await self.build_view([(time.monotonic(), await self.report())])

    async def build_view(self, reports: list[tuple[float, dict[str, Any]]] | None = None) -> dict[str, Any]:
        """The cluster as the latest reports show it, plus the gateway registry (shared by all nodes)."""
        now = time.monotonic()
        if reports is None:
            for key, (at, _) in list(self._reports.items()):
                if now - at > FORGET_AFTER:
                    del self._reports[key]
            reports = list(self._reports.values())
        return {
            "at": time.time(),
            "observer": self.name,
            "cluster": self.host.settings.cluster,
            **cluster_view(reports, now, time.time(), stale_after=STALE_AFTER, errors=ERRORS_SHOWN),
            "gateway": await self._gateway(),
        }

    async def _gateway(self) -> dict[str, Any]:
        admin = self.host.gateway_admin
        try:
            services = await asyncio.wait_for(admin.services(), PROBE_TIMEOUT)
        except Exception as exc:
            log.warning("dashboard: gateway services unavailable (%s)", type(exc).__name__)
            services = []
        return {
            "services": services,
            "functions": admin.functions(),
            "rate_limits": admin.rate_limits().to_wire(),
        }

    def presence_list(self, topic: str) -> list[dict[str, Any]]:
        """Who is on ``topic`` (every node's entries), at most :data:`MAX_PRESENCES` keys."""
        listing = self.host.presence.list(topic)
        return [
            {"key": key, "metas": entry.get("metas", [])}
            for key, entry in sorted(listing.items())[:MAX_PRESENCES]
        ]
