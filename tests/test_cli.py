"""The ``relaygate`` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

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


def test_serve_answers_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
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
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    assert (tmp_path / "var" / "relaygate.db").exists()
