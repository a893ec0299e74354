"""Two Relaygate nodes as separate uvicorn processes on separate ports, sharing one real Redis.

Each node serves the conformance app (tests/conformance/app.py `cluster_app`) built on
RedisPubSub + RedisPresence. Nodes are started per test with `sys.executable` and always
stopped (or killed) at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from tests.servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


class NodeServer:
    """One node process: `uvicorn --factory tests.conformance.app:cluster_app` on a free port."""

    def __init__(self, redis_url: str, name: str, log_dir: Path) -> None:
        self.redis_url = redis_url
        self.name = name
        self.port = free_port()
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The socket URL for phoenix.js and relaygate.client (`.../socket`)."""
        return f"ws://127.0.0.1:{self.port}/socket"

    async def start(self, attempts: int = 3) -> None:
        """Start until the node itself listens on its port, retrying on another port.

        The port is picked free and released until uvicorn binds it after its lifespan (Redis)
        has started: meanwhile another process on this shared machine may take it.
        """
        for _ in range(attempts):
            await self._spawn()
            if await self._listening():
                return
            self.kill()
            self.port = free_port()
        pytest.fail(f"node {self.name} did not start: {self.log_tail()}")

    async def _listening(self, timeout: float = 30.0) -> bool:
        assert self.process is not None
        process = psutil.Process(self.process.pid)
        async with asyncio.timeout(timeout):
            while self.process.poll() is None:
                with contextlib.suppress(psutil.Error):
                    if any(
                        c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
                        for c in process.net_connections("tcp")
                    ):
                        return True
                await asyncio.sleep(0.05)
        return False

    async def _spawn(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "RELAYGATE_REDIS_URL": self.redis_url,
            "RELAYGATE_NODE_NAME": self.name,
        }
        argv = [
            sys.executable, "-m", "uvicorn", "--factory", "tests.conformance.app:cluster_app",
            "--host", "127.0.0.1", "--port", str(self.port), "--lifespan", "on",
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def kill(self) -> None:
        """kill -9: the node vanishes without telling anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture
async def nodes(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[tuple[NodeServer, NodeServer]]:
    """Node 1 and node 2 on the session's Redis (the test may kill or restart them)."""
    tag = uuid.uuid4().hex[:6]
    pair = (
        NodeServer(redis_server.url, f"n1-{tag}", tmp_path),
        NodeServer(redis_server.url, f"n2-{tag}", tmp_path),
    )
    try:
        await asyncio.gather(*(node.start() for node in pair))
        yield pair
    finally:
        for node in pair:
            node.stop()


@pytest.fixture
def topic() -> str:
    """A topic of its own per test: the session's Redis is shared."""
    return f"room:{uuid.uuid4().hex[:8]}"
