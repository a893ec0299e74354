"""``python -m bench.micro``: the channel runtime's own cost per message, in process, no sockets.

Sessions get a wire transport that counts the WebSocket frames it is handed (as Relaygate's own
transport would write them to the socket), so the figures are Relaygate's CPU alone without the
write syscall: µs per round trip (push in, reply out), µs per fan-out delivery, and traced Python
heap per idle joined session. They are
reproducible on a busy machine within a few percent (best of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc

from bench.servers.relaygate_app import BenchChannel
from relaygate.channels import Endpoint, Socket
from relaygate.channels.session import Session
from relaygate.protocol import V2, Frame
from relaygate.pubsub import MemoryPubSub


class CountingTransport:
    """A wire transport that counts the frames written to it."""

    __slots__ = ("frames", "writes")
    total = 0
    wire = True

    def __init__(self) -> None:
        self.frames = 0
        self.writes = 0

    def write(self, frames: list[Frame]) -> None:
        self.frames += len(frames)
        self.writes += 1
        CountingTransport.total += len(frames)

    def close(self, code: int, reason: str) -> None:
        return None


def _setup() -> tuple[Endpoint, Socket]:
    endpoint = Endpoint(MemoryPubSub(), idle_timeout=None)
    socket = Socket("/socket")
    socket.channel("bench:*", BenchChannel)
    endpoint.add_socket(socket)
    return endpoint, socket


async def _joined(endpoint: Endpoint, socket: Socket, count: int) -> list[tuple[Session, CountingTransport]]:
    sessions = []
    for index in range(count):
        transport = CountingTransport()
        session = Session(endpoint, socket, V2, {}, None, ("127.0.0.1", index), transport)
        await session.start()
        session.feed(json.dumps(["1", "1", "bench:topic", "phx_join", {}]))
        sessions.append((session, transport))
    while any(transport.frames < 1 for _, transport in sessions):
        await asyncio.sleep(0)
    return sessions


async def _finish(sessions: list[tuple[Session, CountingTransport]]) -> None:
    for session, _ in sessions:
        await session.finish()


async def roundtrip(clients: int, rounds: int) -> float:
    """µs per push answered: ``clients`` sessions each push ``ping`` and wait for the reply."""
    endpoint, socket = _setup()
    sessions = await _joined(endpoint, socket, clients)
    frames = [json.dumps(["1", str(n), "bench:topic", "ping", {"n": n}]) for n in range(rounds)]
    start = time.perf_counter()
    for frame in frames:
        expected = CountingTransport.total + clients
        for session, _ in sessions:
            session.feed(frame)
        while CountingTransport.total < expected:
            await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    await _finish(sessions)
    return elapsed / (clients * rounds) * 1e6


async def fanout(subscribers: int, messages: int) -> float:
    """µs per delivered broadcast frame to ``subscribers`` joined sessions."""
    endpoint, socket = _setup()
    sessions = await _joined(endpoint, socket, subscribers)
    start = time.perf_counter()
    expected = CountingTransport.total + subscribers * messages
    for n in range(messages):
        await endpoint.broadcast("bench:topic", "msg", {"n": n, "body": "x" * 80})
    while CountingTransport.total < expected:
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    await _finish(sessions)
    return elapsed / (subscribers * messages) * 1e6


async def idle_memory(count: int) -> float:
    """Traced Python heap (bytes) per joined idle session, Relaygate's objects only."""
    endpoint, socket = _setup()
    await _joined(endpoint, socket, 10)  # warm caches and interned names
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sessions = await _joined(endpoint, socket, count)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    await _finish(sessions)
    return (after - before) / count


async def _main(args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    for _ in range(args.repeat):
        figures = {
            "roundtrip_us_per_reply": await roundtrip(args.clients, args.rounds),
            "fanout_us_per_delivery": await fanout(args.subscribers, args.messages),
        }
        for key, value in figures.items():
            results[key] = min(results.get(key, value), value)
    results["idle_bytes_per_session"] = await idle_memory(args.sessions)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--asyncio", action="store_true", help="the stdlib loop instead of uvloop")
    args = parser.parse_args()
    if args.asyncio:
        results = asyncio.run(_main(args))
    else:
        import uvloop

        results = uvloop.run(_main(args))
    for key, value in results.items():
        print(f"{key}: {value:.2f}")


if __name__ == "__main__":
    main()
