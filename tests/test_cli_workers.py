"""``relaygate serve --workers N``: worker processes on one port, each a cluster node."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
from redis.asyncio import Redis

from tests.servers import free_port, wait_for_port
from tests.test_cli import run_cli


def test_workers_without_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("serve", "--workers", "2", cwd=tmp_path, env={"RELAYGATE_REDIS_URL": ""})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "relaygate: --workers needs RELAYGATE_REDIS_URL (each worker is a cluster node)"
    ]


def listening(pid: int, port: int) -> bool:
    try:
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == port
            for c in psutil.Process(pid).net_connections(kind="tcp")
        )
    except psutil.NoSuchProcess:
        return False


async def test_two_workers_serve_one_port_as_two_nodes_and_stop_on_sigterm(
    tmp_path: Path, redis_url: str
) -> None:
    port = free_port()
    prefix_db = redis_url.rsplit("/", 1)[0] + "/7"  # a database of our own: the replicas hash is ours
    redis = Redis.from_url(prefix_db)
    await redis.flushdb()
    process = subprocess.Popen(
        [sys.executable, "-m", "relaygate", "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env={
            **os.environ,
            "RELAYGATE_ENV": "dev",
            "RELAYGATE_REDIS_URL": prefix_db,
            "RELAYGATE_NODE_NAME": "n",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=90)
        workers = psutil.Process(process.pid).children()
        assert len(workers) == 2
        async with asyncio.timeout(90):
            while not all(listening(w.pid, port) for w in workers):
                await asyncio.sleep(0.1)
            # each worker registered its own presence replica under its own node name
            while len(names := set((await redis.hgetall("relaygate:{presence}:replicas")).values())) < 2:
                await asyncio.sleep(0.1)
        assert names == {b"n/w0", b"n/w1"}
        for _ in range(10):  # new connections, spread by the kernel: every one is answered
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/healthz")).json() == {"status": "ok"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate(timeout=30)[0]
        await redis.aclose()
    assert process.returncode == 0, output.decode()[-2000:]
