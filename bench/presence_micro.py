"""``python -m bench.presence_micro``: the CPU of one tracked join cycle, in process, no sockets.

A room of ``--members`` tracked members on one node (``MemoryPresence``); each cycle one more
connection joins with ``{"track": key}`` (the bench channel tracks it and pushes
``presence_state``) and the longest-joined member leaves, as in presence-churn. Sessions get a
wire transport that counts what they are handed (``bench.micro.CountingTransport``), so the
figure is Relaygate's CPU alone, without the syscalls and with the diff timers all but idle
(the cycles run faster than a diff window). Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque

from bench.micro import CountingTransport
from bench.servers.relaygate_app import BenchChannel
from relaygate.channels import Endpoint, Socket
from relaygate.channels.session import Session
from relaygate.presence import MemoryPresence
from relaygate.protocol import V2
from relaygate.pubsub import MemoryPubSub

TOPIC = "bench:presence"


async def _wait(transport: CountingTransport, frames: int) -> None:
    while transport.frames < frames:
        await asyncio.sleep(0)


async def cycles(members: int, count: int) -> tuple[float, float]:
    """(µs of CPU per join + leave cycle, write calls per cycle)."""
    pubsub = MemoryPubSub()
    endpoint = Endpoint(pubsub, MemoryPresence(pubsub), idle_timeout=None)
    socket = Socket("/socket")
    socket.channel("bench:*", BenchChannel)
    endpoint.add_socket(socket)
    pool: list[tuple[Session, CountingTransport]] = []
    for index in range(members + count):
        transport = CountingTransport()
        session = Session(endpoint, socket, V2, {}, None, ("127.0.0.1", index), transport)
        await session.start()
        pool.append((session, transport))
    joined: deque[tuple[Session, CountingTransport]] = deque()
    joins = [
        json.dumps(["1", "1", TOPIC, "phx_join", {"track": f"k{n}", "meta": {"t": n}}])
        for n in range(members + count)
    ]
    leave_frame = json.dumps(["1", "2", TOPIC, "phx_leave", {}])

    async def join(n: int) -> None:
        session, transport = pool[n]
        before = transport.frames
        session.feed(joins[n])
        await _wait(transport, before + 2)  # the reply and presence_state
        joined.append((session, transport))

    async def leave() -> None:
        session, transport = joined.popleft()
        before = transport.frames
        session.feed(leave_frame)
        await _wait(transport, before + 1)

    for n in range(members):
        await join(n)
    writes = sum(t.writes for _, t in pool)
    start = time.process_time()
    for n in range(members, members + count):
        await join(n)
        await leave()
    elapsed = time.process_time() - start
    writes = sum(t.writes for _, t in pool) - writes
    for session, _ in pool:
        await session.finish()
    return elapsed / count * 1e6, writes / count


async def _main(args: argparse.Namespace) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        us, writes = await cycles(args.members, args.cycles)
        if us < best.get("us_per_cycle", float("inf")):
            best = {"us_per_cycle": us, "writes_per_cycle": writes}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.presence_micro", description=__doc__)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import uvloop

    for key, value in uvloop.run(_main(args)).items():
        print(f"{key}: {value:.2f}")


if __name__ == "__main__":
    main()
