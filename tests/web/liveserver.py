"""A real Relaygate node in a child process (``python -m relaygate serve``) for end-to-end tests.

Each node gets a free port, its own working folder and the test signing key, so tokens issued by
one node are valid on the others; ``kill()`` is SIGKILL (no drain, no cleanup).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


class LiveServer:
    def __init__(
        self, workdir: Path, database_url: str, *, redis_url: str | None = None, name: str = "n1", **env: str
    ) -> None:
        self.port = free_port()
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELAYGATE_ENV": "test",
            "RELAYGATE_DATABASE_URL": database_url,
            "RELAYGATE_SECRET_KEY": TEST_SECRET,
            "RELAYGATE_NODE_NAME": name,
            "RELAYGATE_LOG_LEVEL": "warning",
            **({"RELAYGATE_REDIS_URL": redis_url} if redis_url else {}),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket"

    async def start(self) -> None:
        """Start and wait until ready; a port taken meanwhile by another process means a new port."""
        for _ in range(3):
            if await self._try_start():
                return
            self.port = free_port()
        raise RuntimeError(f"no free port for the server: {self.log()[-2000:]}")

    async def _try_start(self) -> bool:
        log = (self.workdir / "server.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "relaygate", "serve", "--port", str(self.port), "--migrate"],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.process = process
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                if process.poll() is not None:
                    self.process = None
                    if "address already in use" in self.log()[-2000:]:
                        return False
                    raise RuntimeError(f"server exited {process.returncode}: {self.log()[-2000:]}")
                try:
                    if (await client.get(f"{self.http_url}/readyz", timeout=1)).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"server not ready: {self.log()[-2000:]}")

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or clean anything up."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


async def register(http: httpx.AsyncClient, name: str) -> tuple[int, str]:
    """(user id, access token) of a new user, through the HTTP API."""
    email = f"{name.lower()}@example.com"
    body = {"name": name, "subname": "Test", "email": email, "job": "Tester", "password": PASSWORD}
    created = await http.post("/api/v1/users", json=body)
    assert created.status_code == 201, created.text
    session = await http.post("/api/v1/sessions", json={"email": email, "password": PASSWORD})
    assert session.status_code == 200, session.text
    return int(created.json()["data"]["id"]), str(session.json()["data"]["token"])


async def start_conversation(http: httpx.AsyncClient, token: str, recipient: int) -> int:
    response = await http.post(
        "/api/v1/conversations",
        json={"recipient_id": recipient},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code in (200, 201), response.text
    return int(response.json()["data"]["id"])
