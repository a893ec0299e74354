"""history: broadcasts on a topic with history vs a plain one, and the cost of a recovery.

S subscribers join a plain topic (``bench:plain``) and a history topic (``benchhist:live``); a
publisher broadcasts M ~100-byte messages to each in turn (two alternating rounds), and the
server's CPU per delivered message is compared. Then R topics each get 100 broadcasts nobody
hears; a client that had joined before rejoins each with ``since`` and the server CPU and wall
time until the 100th replayed message are measured per recovery. Clients run in the runner
process (the server's CPU is what is compared).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.scenarios import Metric, RunContext, Target, machine_busy, others_pct
from bench.wire import PhoenixClient, open_client

NAME = "history"
TITLE = "History: a broadcast on a history topic vs a plain one; recovering 100 missed messages"
SYSTEMS = ("relaygate", "relaygate-redis")
PAD = "x" * 48
PLAIN, LIVE = "bench:plain", "benchhist:live"

METRICS = [
    Metric("subscribers", "subscribers"),
    Metric("messages", "broadcasts per topic"),
    Metric("plain_cpu_us", "plain: server CPU/delivered msg (µs)", "{:.2f}"),
    Metric("history_cpu_us", "history: server CPU/delivered msg (µs)", "{:.2f}"),
    Metric("history_vs_plain", "history / plain CPU", "{:.2f}", plot=True),
    Metric("missed", "missed per recovery"),
    Metric("recoveries", "recoveries"),
    Metric("recover_cpu_ms", "server CPU per recovery (ms)", "{:.2f}", plot=True),
    Metric("recover_p50_ms", "recovery time p50 (ms)", "{:.2f}"),
    Metric("recover_max_ms", "recovery time max (ms)", "{:.2f}"),
    Metric("others_cpu_pct", "other processes' CPU (%)", "{:.0f}"),
]

TARGETS = [
    Target("history broadcast ≤ 1.5 x the CPU of a plain one", "history_vs_plain", "<=", 1.5),
    Target("recovering 100 missed messages ≤ 5 ms server CPU", "recover_cpu_ms", "<=", 5.0),
    Target("recovering 100 missed messages ≤ 5 ms (time)", "recover_p50_ms", "<=", 5.0),
]


def size(quick: bool) -> dict[str, Any]:
    if quick:
        return {"subscribers": 200, "messages": 300, "window": 4, "recoveries": 40, "missed": 100}
    return {"subscribers": 1000, "messages": 500, "window": 4, "recoveries": 200, "missed": 100}


async def _publish(client: PhoenixClient, topic: str, count: int, window: int) -> None:
    inflight: set[asyncio.Task[Any]] = set()
    for seq in range(count):
        payload = {"t": time.monotonic_ns(), "seq": seq, "pad": PAD}
        inflight.add(asyncio.create_task(client.push(topic, "publish", payload)))
        if len(inflight) >= window:
            done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
    for task in inflight:
        await task


async def _until(condition: Any, what: str, timeout: float = 120.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def _drive(ctx: RunContext) -> dict[str, Any]:
    size, server = ctx.size, ctx.server
    urls = server.urls
    received = {PLAIN: 0, LIVE: 0}

    def counter(topic: str) -> Any:
        def on_broadcast(event: str, payload: Any) -> None:
            received[topic] += 1

        return on_broadcast

    subscribers: list[PhoenixClient] = []
    for index in range(size["subscribers"]):
        for topic in (PLAIN, LIVE):  # one connection per topic, so each callback knows its topic
            client = await open_client("phoenix", urls[index % len(urls)])
            assert isinstance(client, PhoenixClient)
            await client.join(topic)
            client.on_broadcast = counter(topic)
            subscribers.append(client)
    publisher = await open_client("phoenix", urls[0])
    assert isinstance(publisher, PhoenixClient)
    for topic in (PLAIN, LIVE):
        await publisher.join(topic)
    ctx.log(f"{size['subscribers']} subscribers on each topic")

    cpu = {PLAIN: 0.0, LIVE: 0.0}
    count, window, subs = size["messages"], size["window"], size["subscribers"]
    t_all, m_all, s_all = time.monotonic(), machine_busy(), server.cpu()
    for _round in range(2):
        for topic in (PLAIN, LIVE):
            target = received[topic] + count * subs
            before = server.cpu()
            await _publish(publisher, topic, count, window)
            await _until(lambda topic=topic, target=target: received[topic] >= target, topic)
            cpu[topic] += server.cpu() - before
    delivered = 2 * count * subs
    plain_us, history_us = cpu[PLAIN] / delivered * 1e6, cpu[LIVE] / delivered * 1e6

    # Recovery: R topics, each with `missed` broadcasts after the position a client had.
    missed, rounds = size["missed"], size["recoveries"]
    positions: list[str] = []
    for r in range(rounds):
        topic = f"benchhist:rec{r}"
        response = await publisher.join(topic)
        positions.append(response["position"])
        await _publish(publisher, topic, missed, window)
    ctx.log(f"{rounds} topics with {missed} missed broadcasts each")
    got = [0]
    replayed = asyncio.Event()
    late = await open_client("phoenix", urls[-1])  # on a cluster: the other node
    assert isinstance(late, PhoenixClient)

    def count_replay(event: str, payload: Any) -> None:
        got[0] += 1
        if got[0] == missed:
            replayed.set()

    late.on_broadcast = count_replay
    durations: list[float] = []
    before = server.cpu()
    for r in range(rounds):
        got[0] = 0
        replayed.clear()
        started = time.perf_counter()
        response = await late.join(f"benchhist:rec{r}", payload={"since": positions[r]})
        if response.get("recovered") is not True:
            raise RuntimeError(f"recovery {r} failed: {response}")
        async with asyncio.timeout(60):
            await replayed.wait()
        durations.append(time.perf_counter() - started)
    recover_cpu = (server.cpu() - before) / rounds
    seconds = time.monotonic() - t_all
    others = others_pct(machine_busy() - m_all, server.cpu() - s_all, seconds)
    for client in [*subscribers, publisher, late]:
        await client.close()
    return {
        "subscribers": subs,
        "messages": count,
        "plain_cpu_us": plain_us,
        "history_cpu_us": history_us,
        "history_vs_plain": history_us / plain_us if plain_us else None,
        "missed": missed,
        "recoveries": rounds,
        "recover_cpu_ms": recover_cpu * 1e3,
        "recover_p50_ms": statistics.median(durations) * 1e3,
        "recover_max_ms": max(durations) * 1e3,
        "others_cpu_pct": others,
    }


def run(ctx: RunContext) -> dict[str, Any]:
    return asyncio.run(_drive(ctx))
