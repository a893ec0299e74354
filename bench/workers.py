"""Load-generator processes: each runs one asyncio coroutine and meets the parent at named steps.

The parent (the scenario) starts a :class:`WorkerPool`, then calls :meth:`WorkerPool.step` to wait
until every worker has reached a step (collecting what each one reports) and release them all.
Between steps the parent samples server and client CPU with psutil, so CPU per message covers the
generator too. Workers are bounded by the step timeout and always terminated on exit.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import multiprocessing
import shutil
import time
import traceback
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection, wait
from typing import Any

import psutil
import uvloop

from bench.servers import REPO_ROOT, raise_fd_limit

WorkerFn = Callable[["Control", dict[str, Any]], Awaitable[Any]]


class WorkerError(RuntimeError):
    pass


class Control:
    """The worker's side of the step protocol."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def step(self, name: str, data: Any = None) -> Any:
        """Report ``data`` at step ``name``, wait for the parent's release; returns what it sent."""
        self.conn.send((name, data))
        reply = await asyncio.to_thread(self.conn.recv)
        return reply


NODE_GENERATORS = REPO_ROOT / "bench" / "node"


def node_generator() -> bool:
    """Node is installed (the generators in ``bench/node`` use only its standard library)."""
    return shutil.which("node") is not None


async def relay_node(ctl: Control, script: str, options: dict[str, Any], steps: tuple[str, ...]) -> None:
    """Run ``bench/node/<script>`` with ``options`` (JSON, argv[2]) and relay its steps: this worker
    only passes them on; the Node child's CPU counts as the generator's (:meth:`WorkerPool.cpu`)."""
    child = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_GENERATORS / script),
        json.dumps(options),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        for name in steps:
            line = await child.stdout.readline()
            if not line:
                raise RuntimeError(f"the Node generator exited before step {name!r}")
            message = json.loads(line)
            if message["step"] != name:
                raise RuntimeError(f"the Node generator reported {message['step']!r}, expected {name!r}")
            await ctl.step(name, message["data"])
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        await asyncio.wait_for(child.wait(), 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


def _entry(conn: Connection, target: str, params: dict[str, Any]) -> None:
    raise_fd_limit()
    module_name, _, attr = target.partition(":")
    fn: WorkerFn = getattr(importlib.import_module(module_name), attr)
    try:
        result = uvloop.run(fn(Control(conn), params))
        conn.send(("exit", result))
    except BaseException:
        conn.send(("error", traceback.format_exc()))


class WorkerPool:
    """Client worker processes, ``(target, params)`` each; ``target`` is ``"module:coroutine_fn"``."""

    def __init__(self, jobs: list[tuple[str, dict[str, Any]]]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for target, params in jobs:
            parent, child = context.Pipe()
            proc = context.Process(target=_entry, args=(child, target, params), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self.ps = [psutil.Process(proc.pid) for proc in self.procs]

    def step(self, name: str, timeout: float, reply: Any = None, release: bool = True) -> list[Any]:
        """Wait until every worker reports step ``name``; then (if ``release``) send ``reply`` to all."""
        received: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(received) < len(self.conns):
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(
                    f"step {name!r}: {len(received)}/{len(self.conns)} workers after {timeout}s"
                )
            waiting = [conn for i, conn in enumerate(self.conns) if i not in received]
            for conn in wait(waiting, timeout=min(left, 1.0)):
                index = self.conns.index(conn)  # type: ignore[arg-type]
                try:
                    got, data = conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise WorkerError(f"worker {index} died at step {name!r}") from None
                if got == "error":
                    raise WorkerError(f"worker {index} failed at step {name!r}:\n{data}")
                if got != name:
                    raise WorkerError(f"worker {index} reported {got!r}, expected {name!r}")
                received[index] = data
        if release:
            self.release(reply)
        return [received[i] for i in range(len(self.conns))]

    def release(self, reply: Any = None) -> None:
        for conn in self.conns:
            conn.send(reply)

    def cpu(self) -> float:
        """CPU seconds (user + system) of all client processes so far, their live children
        (a Node generator) included."""
        total = 0.0
        for proc in self.ps:
            try:
                times = proc.cpu_times()
                children = proc.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
            for child in children:
                try:
                    child_times = child.cpu_times()
                except psutil.NoSuchProcess:
                    continue  # it exited: its CPU is in children_user/children_system once reaped
                total += child_times.user + child_times.system
        return total

    def close(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        for conn in self.conns:
            conn.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(timeout=10.0 if exc[0] is None else 0.5)
