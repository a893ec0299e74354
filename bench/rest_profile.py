"""``python -m bench.rest_profile``: where one REST request's server CPU goes, on the wire, by layer.

Starts a ``rest`` system (``relaygate-api``, ``bare-starlette``, their ``-pg`` variants) as the
bench does, loads it with one request kind only (``--phase get`` or ``post``) from C keep-alive
connections in a separate process, samples the server with ``py-spy record`` meanwhile, and
splits the samples by layer: the innermost frame of a stack that a rule below recognises names
its layer (so the time of a C call, e.g. sqlite3's ``execute``, counts for the Python frame that
made it). Server CPU per request (node process, plus PostgreSQL's backends on ``-pg``) is
measured as the bench does; the node's kernel CPU is shown apart and its user CPU split over the
layers by their share of the samples (samples inside a response's ``send()`` write are shown as
a share only: py-spy samples wall time, and a loopback write often waits for the CPU there).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.http1 import Connection, request
from bench.profile import FRAME
from bench.servers import SERVERS, UvicornOptions, launch

# (layer, file fragment, function or "" for any), tried innermost frame first, first match wins.
WRITES = "socket writes (wall time in send())"
RULES: tuple[tuple[str, str, str], ...] = (
    (WRITES, "relaygate/web/http_protocol.py", "ResponseCycle.send"),
    (WRITES, "relaygate/web/http_protocol.py", "ResponseCycle.flush_head"),
    (WRITES, "uvicorn/protocols/http/httptools_impl.py", "RequestResponseCycle.send"),
    ("json (orjson)", "", "dumps"),
    ("body validation (pydantic)", "pydantic/", ""),
    ("auth (token, revocation view)", "relaygate/accounts/", ""),
    ("data (driver)", "relaygate/db/direct.py", ""),
    ("data (driver)", "asyncpg/", ""),
    ("data (driver)", "sqlite3/", ""),
    ("data (driver)", "sqlalchemy/", ""),
    ("pubsub broadcast", "relaygate/pubsub/", ""),
    ("pubsub broadcast", "relaygate/channels/", ""),
    ("chat context (handler)", "company_api/contexts/chat/", ""),
    ("representation", "company_api/contexts/catalog/", ""),
    ("representation", "company_api/web/", ""),
    ("representation", "relaygate/web/conditional.py", ""),
    ("representation", "relaygate/web/resources.py", "_respond"),
    ("representation", "relaygate/web/resources.py", "_validator_headers"),
    ("decision flow", "relaygate/web/resources.py", ""),
    ("decision flow", "relaygate/web/problems.py", ""),
    ("middleware (request id, metrics, log)", "relaygate/web/middleware.py", ""),
    ("middleware (request id, metrics, log)", "prometheus_client/", ""),
    ("middleware (request id, metrics, log)", "relaygate/telemetry/", ""),
    ("framework entry (FastAPI/Starlette)", "fastapi/", ""),
    ("framework entry (FastAPI/Starlette)", "starlette/", ""),
    ("framework entry (FastAPI/Starlette)", "relaygate/channels/endpoint.py", ""),
    ("framework entry (FastAPI/Starlette)", "bench/servers/bare_rest.py", ""),
    ("HTTP/1.1 (uvicorn httptools protocol)", "uvicorn/protocols/http/", ""),
    ("HTTP/1.1 (uvicorn httptools protocol)", "relaygate/web/http_protocol.py", ""),
    ("HTTP/1.1 (uvicorn httptools protocol)", "uvicorn/middleware/", ""),
    ("event loop (uvloop, asyncio)", "", ""),
)


def layer(stack: list[tuple[str, str]]) -> str:
    leaf = True
    for func, file in reversed(stack):
        for name, fragment, function in RULES:
            if name == WRITES and not leaf:
                continue
            if fragment and fragment not in file:
                continue
            if function and func != function:
                continue
            if not fragment and not function:
                continue
            return name
        leaf = False
    return RULES[-1][0]


def split(raw: Path) -> tuple[int, Counter[str]]:
    layers: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        stack: list[tuple[str, str]] = []
        for frame in stack_text.split(";"):
            match = FRAME.match(frame.strip())
            if match is not None and not match["func"].startswith(("process ", "thread ")):
                stack.append((match["func"], match["file"]))
        if not stack:
            continue
        layers[layer(stack)] += int(count)
        total += int(count)
    return total, layers


def _load(port: int, raw: bytes, connections: int, seconds: float, done: Any) -> None:
    import uvloop

    async def main() -> int:
        conns = [await Connection.open(port) for _ in range(connections)]
        deadline = time.monotonic() + seconds
        count = 0

        async def loop(conn: Connection) -> None:
            nonlocal count
            while time.monotonic() < deadline:
                status, _ = await conn.send(raw)
                if status not in (200, 201):
                    raise RuntimeError(f"status {status}")
                count += 1

        await asyncio.gather(*(loop(c) for c in conns))
        return count

    done.put(uvloop.run(main()))


def run(system: str, phase: str, connections: int, seconds: float, rate: int, native: bool = False) -> None:
    spec = SERVERS[system]
    folder = Path(tempfile.mkdtemp(prefix="relaygate-profile-"))
    server = launch(spec, UvicornOptions(), folder / "server.log")
    try:
        server.start()
        seeded = server.seed  # type: ignore[attr-defined]
        auth = {"Authorization": f"Bearer {seeded.token}"}
        raw = (
            request("GET", f"/api/v1/products/{seeded.product_id}")
            if phase == "get"
            else request(
                "POST", f"/api/v1/conversations/{seeded.conversation_id}/messages", auth, {"content": "hello"}
            )
        )
        context = multiprocessing.get_context("spawn")
        warm: Any = context.Queue()
        warmer = context.Process(target=_load, args=(server.port, raw, connections, 1.5, warm))
        warmer.start()
        warm.get()
        warmer.join()
        out = folder / "raw.txt"
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        done: Any = context.Queue()
        loader = context.Process(target=_load, args=(server.port, raw, connections, seconds, done))
        node = server.process
        assert node is not None
        cpu0, node0 = server.cpu(), node.cpu_times()
        loader.start()
        command = [
            spy,
            "record",
            "--pid",
            str(node.pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(out),
        ]
        command.append("--native" if native else "--nonblocking")
        profiler = (
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if rate else None
        )
        count = done.get()
        cpu1, node1 = server.cpu(), node.cpu_times()
        loader.join()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=30)
    finally:
        server.stop()
    node_us = (node1.user + node1.system - node0.user - node0.system) / count * 1e6
    kernel_us = (node1.system - node0.system) / count * 1e6
    total_us = (cpu1 - cpu0) / count * 1e6
    if profiler is None:
        print(f"{system} {phase}: {count / seconds:,.0f} req/s, server CPU {total_us:.0f} µs/request "
              f"(node process {node_us:.0f}, of which in the kernel {kernel_us:.0f})")  # fmt: skip
        return
    samples, layers = split(out)
    print(f"{system} {phase}: {count / seconds:,.0f} req/s, server CPU {total_us:.0f} µs/request "
          f"(node process {node_us:.0f}, of which in the kernel {kernel_us:.0f}; sampled while py-spy ran, "
          f"{samples} samples)")  # fmt: skip
    # py-spy samples wall time: a thread in send() (a loopback write wakes the reader, and the
    # scheduler may run it first) counts while it waits, so the writes' samples are shown but not
    # priced; the node's user CPU is split over the other samples and its kernel CPU shown apart.
    computing = samples - layers[WRITES]
    print(f"  {WRITES:42s} {100 * layers[WRITES] / samples:5.1f}% of samples")
    print(f"  {'kernel (system calls: socket I/O)':42s} {'':6s}  {kernel_us:6.0f} µs")
    for name, n in layers.most_common():
        if name != WRITES:
            print(
                f"  {name:42s} {100 * n / computing:5.1f}%  {(node_us - kernel_us) * n / computing:6.0f} µs"
            )
    print(f"raw stacks: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rest_profile", description=__doc__)
    parser.add_argument(
        "--system", default="relaygate-api", choices=[s for s in SERVERS if "api" in s or "bare" in s]
    )
    parser.add_argument("--phase", choices=("get", "post"), default="get")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (0: measure only)")
    parser.add_argument(
        "--native", action="store_true", help="C and Cython frames too (pauses the server per sample)"
    )
    args = parser.parse_args()
    run(args.system, args.phase, args.connections, args.seconds, args.rate, args.native)


if __name__ == "__main__":
    main()
