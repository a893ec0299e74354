"""The ``relaygate`` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from tests.servers import free_port, wait_for_port


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "relaygate", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_gen_secret_prints_a_fresh_key(tmp_path: Path) -> None:
    first, second = run_cli("gen-secret", cwd=tmp_path), run_cli("gen-secret", cwd=tmp_path)
    assert first.returncode == 0
    assert len(first.stdout.strip()) >= 32
    assert first.stdout != second.stdout


def test_bad_configuration_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("migrate", cwd=tmp_path, env={"RELAYGATE_ENV": "prod", "RELAYGATE_SECRET_KEY": ""})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "relaygate: configuration error: RELAYGATE_SECRET_KEY is required when RELAYGATE_ENV=prod"
    ]
    result = run_cli("serve", cwd=tmp_path, env={"RELAYGATE_DATABASE_URL": "oracle://x"})
    assert result.returncode == 2
    assert "RELAYGATE_DATABASE_URL" in result.stderr


def test_migrate_then_routes(tmp_path: Path) -> None:
    result = run_cli("migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout
    assert (tmp_path / "var" / "relaygate.db").exists()
    assert "up to date" in run_cli("migrate", cwd=tmp_path).stdout
    routes = run_cli("routes", cwd=tmp_path)
    assert routes.returncode == 0, routes.stderr
    assert any(line.split() == ["GET", "/healthz"] for line in routes.stdout.splitlines())


async def test_serve_answers_health_and_drains_sockets_on_sigterm(tmp_path: Path) -> None:
    """A served node: health, readiness, a joined socket; SIGTERM closes it with 1012 and exits 0."""
    created = run_cli(
        "users", "create", "--email", "ops@example.com", "--password", "correct horse battery", cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "relaygate", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "RELAYGATE_ENV": "dev"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, timeout=90)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
            login = await http.post(
                "/api/v1/sessions", json={"email": "ops@example.com", "password": "correct horse battery"}
            )
            token = login.json()["data"]["token"]
        url = f"ws://127.0.0.1:{port}/socket/websocket?token={token}&vsn=2.0.0"
        async with websockets.connect(url) as socket:
            await socket.send(orjson.dumps(["1", "1", "room:lobby", "phx_join", {}]).decode())
            reply = orjson.loads(await asyncio.wait_for(socket.recv(), 30))
            assert reply[3] == "phx_reply" and reply[4]["status"] == "ok"
            assert list(reply[4]["response"]) == ["position"]  # room:* keeps history
            process.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(socket.recv(), 60)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
