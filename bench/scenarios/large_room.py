"""large-room: N sockets join one presence-tracked room as fast as the server admits them.

Client workers connect and join their share of the members at once (64 handshakes in flight per
worker), each member tracking its own key (``{"track": "<index>"}``). Every member keeps the
set of keys its presence list holds (a bitmap: ``presence_state`` sets it, each
``presence_diff`` adds its joins; nobody leaves) and stamps the moment the list is complete.
Reported: the time from the first connect until every member is joined, and until every
member's list is complete; presence frames (state and diffs) per member; server CPU per member.
Then one member publishes a broadcast and every member stamps its receipt: the delivery time to
all is the last receipt minus the send time.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from bench.scenarios import Metric, RunContext, Target, machine_busy, others_pct, split
from bench.wire import Heartbeats, PhoenixClient, WireClient, source_host
from bench.workers import Control, WorkerPool, node_generator, relay_node

NAME = "large-room"
TITLE = "Large room: N sockets join one presence-tracked room; then one broadcast to all"
SYSTEMS = ("relaygate", "relaygate-redis")
TOPIC = "bench:room"

METRICS = [
    Metric("members", "members"),
    Metric("joined_s", "all joined (s)", "{:.1f}"),
    Metric("complete_s", "all lists complete (s)", "{:.1f}", plot=True),
    Metric("frames_per_member", "presence frames/member (mean)", "{:.1f}", plot=True),
    Metric("frames_per_member_max", "presence frames/member (max)", "{:,.0f}"),
    Metric("broadcast_ms", "broadcast to all (ms)", "{:,.0f}", plot=True),
    Metric("server_cpu_us_per_member", "server CPU/member (µs)", "{:,.0f}"),
    Metric("client_cpu_us_per_member", "client CPU/member (µs)", "{:,.0f}"),
    Metric("others_cpu_pct", "other processes' CPU (%)", "{:.0f}"),
]

TARGETS = [
    Target("5,000 members' lists complete in ≤ 10 s", "complete_s", "<=", 10),
    Target("≤ 20 presence frames per member", "frames_per_member", "<=", 20),
    Target("a broadcast after the last join reaches all within 1 s", "broadcast_ms", "<=", 1000),
]


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"members": 1_000, "workers": 2, "fill_timeout": 60.0}
    return {"members": 5_000, "workers": 4, "fill_timeout": 180.0}


KEY = re.compile(rb'"(\d+)":\{"metas"')
"""A presence key in a ``presence_state`` or ``presence_diff`` frame (keys are member indices)."""


class RoomClient(PhoenixClient):
    """Reads presence frames without decoding them: a member's ``presence_state`` lists up to N
    metas, and building those objects on the client would cost more than the server's encoding
    (N²/2 metas over a fill). The keys are taken with a regular expression; nobody leaves, so a
    diff's keys are all joins."""

    def __init__(self, view: Member) -> None:
        super().__init__()
        self.view = view

    def handle(self, raw: bytes) -> None:
        head = raw[:96]
        if b'"presence_state"' in head or b'"presence_diff"' in head:
            self.view.presence(KEY.findall(raw))
        else:
            super().handle(raw)


class Member:
    """One joined socket's view of the room: which keys its presence list holds."""

    def __init__(self, members: int) -> None:
        import numpy as np

        self.np = np
        self.seen = np.zeros(members, dtype=bool)
        self.count = 0
        self.frames = 0
        self.complete_ns = 0
        self.message_ns = 0

    def presence(self, keys: list[bytes]) -> None:
        """One presence frame with these keys."""
        self.frames += 1
        if keys:
            indices = self.np.fromiter(map(int, keys), dtype=self.np.int64, count=len(keys))
            fresh = indices[~self.seen[indices]]
            self.seen[fresh] = True
            self.count += int(fresh.size)
        if not self.complete_ns and self.count == self.seen.size:
            self.complete_ns = time.monotonic_ns()

    def received(self, event: str, payload: Any) -> None:
        if event == "msg":
            self.message_ns = time.monotonic_ns()


async def client(ctl: Control, params: dict[str, Any]) -> None:
    members, urls = params["members"], params["urls"]
    indices = range(*params["indices"])
    views: list[Member] = []
    clients: list[WireClient] = []
    joined_ns: list[int] = []
    errors: list[str] = []
    heartbeats = Heartbeats(30.0)
    await ctl.step("ready")
    start_ns = time.monotonic_ns()
    heartbeats.start()
    todo = iter(indices)

    async def runner() -> None:
        for index in todo:
            view = Member(members)
            try:
                c = RoomClient(view)
                await c.connect(urls[index % len(urls)], source_host(index))
                c.on_broadcast = view.received
                await c.join(TOPIC, timeout=params["fill_timeout"], payload={"track": str(index)})
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            joined_ns.append(time.monotonic_ns())
            views.append(view)
            clients.append(c)
            heartbeats.add(c)

    await asyncio.gather(*(runner() for _ in range(min(64, len(indices)))))
    deadline = time.monotonic() + params["fill_timeout"]
    while time.monotonic() < deadline and not all(v.complete_ns for v in views):
        await asyncio.sleep(0.05)
    frames = [v.frames for v in views]
    await ctl.step(
        "filled",
        {
            "start_ns": start_ns,
            "joined": len(views),
            "failed": len(errors),
            "errors": errors[:3],
            "joined_ns": max(joined_ns, default=0),
            "complete": sum(1 for v in views if v.complete_ns),
            "complete_ns": max((v.complete_ns for v in views), default=0),
            "frames_sum": sum(frames),
            "frames_max": max(frames, default=0),
            "incomplete_counts": sorted(v.count for v in views if not v.complete_ns)[:5],
        },
    )
    sent_ns = 0
    if params["publisher"] and clients:
        assert isinstance(clients[0], PhoenixClient)
        sent_ns = time.monotonic_ns()
        await clients[0].push(TOPIC, "publish", {"body": "x" * 100})
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and not all(v.message_ns for v in views):
        await asyncio.sleep(0.01)
    await ctl.step(
        "delivered",
        {
            "sent_ns": sent_ns,
            "received": sum(1 for v in views if v.message_ns),
            "last_ns": max((v.message_ns for v in views), default=0),
        },
    )
    heartbeats.stop()
    for c in clients:
        await c.close()


async def node_client(ctl: Control, params: dict[str, Any]) -> None:
    """The same member work as :func:`client`, done by ``bench/node/large_room.mjs``."""
    lo, hi = params["indices"]
    options = {key: params[key] for key in ("members", "urls", "fill_timeout", "publisher")}
    await relay_node(
        ctl,
        "large_room.mjs",
        options | {"start": lo, "stop": hi, "topic": TOPIC},
        ("ready", "filled", "delivered"),
    )


def run(ctx: RunContext) -> dict[str, Any]:
    size, server = ctx.size, ctx.server
    members = size["members"]
    node = node_generator()
    ctx.notes.append(
        "load generator: Node on raw sockets (bench/node/large_room.mjs)"
        if node
        else "load generator: Python raw frames (no Node here)"
    )
    jobs = [
        (
            f"{__name__}:{'node_client' if node else 'client'}",
            {
                "members": members,
                "urls": server.urls,
                "indices": (r.start, r.stop),
                "fill_timeout": size["fill_timeout"],
                "publisher": i == 0,
            },
        )
        for i, r in enumerate(split(members, size["workers"]))
    ]
    with WorkerPool(jobs) as pool:
        pool.step("ready", 120)
        t0, s0, c0, m0 = time.monotonic(), server.cpu(), pool.cpu(), machine_busy()
        filled = pool.step("filled", size["fill_timeout"] * 2 + 60, release=False)
        t1, s1, c1, m1 = time.monotonic(), server.cpu(), pool.cpu(), machine_busy()
        pool.release()
        delivered = pool.step("delivered", 60)
    start = min(r["start_ns"] for r in filled)
    joined = sum(r["joined"] for r in filled)
    complete = sum(r["complete"] for r in filled)
    errors = [e for r in filled for e in r["errors"]]
    if errors:
        ctx.notes.append(f"join errors, e.g. {errors[0]}")
    if complete < joined:
        counts = [c for r in filled for c in r["incomplete_counts"]]
        ctx.notes.append(f"{joined - complete} members' lists incomplete at the timeout (e.g. {counts[:3]})")
    sent = max(r["sent_ns"] for r in delivered)
    received = sum(r["received"] for r in delivered)
    if received < joined:
        ctx.notes.append(f"the broadcast reached {received} of {joined} members within 10 s")
    per = max(joined, 1)
    return {
        "members": members,
        "joined": joined,
        "failed": sum(r["failed"] for r in filled),
        "joined_s": (max(r["joined_ns"] for r in filled) - start) / 1e9,
        "complete_s": (max(r["complete_ns"] for r in filled) - start) / 1e9 if complete == joined else None,
        "complete": complete,
        "frames_per_member": sum(r["frames_sum"] for r in filled) / per,
        "frames_per_member_max": max(r["frames_max"] for r in filled),
        "broadcast_ms": (max(r["last_ns"] for r in delivered) - sent) / 1e6 if received == joined else None,
        "broadcast_received": received,
        "server_cpu_us_per_member": (s1 - s0) / per * 1e6,
        "client_cpu_us_per_member": (c1 - c0) / per * 1e6,
        "server_cpu_s": s1 - s0,
        "client_cpu_s": c1 - c0,
        "others_cpu_pct": others_pct(m1 - m0, s1 - s0 + c1 - c0, t1 - t0),
    }
