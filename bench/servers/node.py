"""A full Relaygate node (``relaygate.app``) on a seeded throwaway SQLite (or PostgreSQL) database,
or a peer of it.

Before the server starts, :func:`bench.servers.seed.seed` migrates the database and issues a
token (``process.seed``). With ``spec.node.gateway == "redis"`` the node joins a throwaway
redis-server and a ``relaygate service run`` process serves the bench functions over it; with
``"local"`` the node loads them itself (``RELAYGATE_GATEWAY_MODULE``). CPU and RSS sum the node,
the service process, Redis and PostgreSQL (every backend of the cluster). Every child is killed and the folder removed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

from bench.servers import REPO_ROOT, ServerProcess, ServerSpec, UvicornOptions
from bench.servers.seed import Seed, seed

GATEWAY_MODULE = "bench.servers.gateway_service:svc"


class NodeProcess(ServerProcess):
    def __init__(
        self, spec: ServerSpec, options: UvicornOptions, log_path: Path, profile_path: Path | None = None
    ) -> None:
        super().__init__(spec, options, log_path, profile_path=profile_path)
        self.folder: Path | None = None
        self.redis: Any = None
        self.service: subprocess.Popen[bytes] | None = None
        self.seed: Seed | None = None
        self.postgres: Any = None

    def start(self, timeout: float = 30.0) -> None:
        from relaygate.config import Settings
        from tests.servers import RedisServer

        assert self.spec.node is not None
        self.folder = Path(tempfile.mkdtemp(prefix="relaygate-bench-"))
        database_url = f"sqlite+aiosqlite:///{self.folder / 'bench.db'}"
        if self.spec.node.database == "postgres":
            from tests.servers import PostgresServer

            self.postgres = PostgresServer()
            self.postgres.start()
            database_url = self.postgres.create_database("bench")
        self.env = {
            "RELAYGATE_ENV": "test",
            "RELAYGATE_DATABASE_URL": database_url,
            "RELAYGATE_SECRET_KEY": secrets.token_urlsafe(48),
            "RELAYGATE_LOG_LEVEL": "warning",
            "RELAYGATE_CHAT_RATE_LIMIT": str(10**9),  # the bench measures throughput, not the limiter
        }
        if self.spec.node.gateway == "local":
            self.env["RELAYGATE_GATEWAY_MODULE"] = GATEWAY_MODULE
        elif self.spec.node.gateway == "redis":
            self.redis = RedisServer()
            self.redis.start()
            self.env["RELAYGATE_REDIS_URL"] = self.redis.url
        self.seed = asyncio.run(
            seed(Settings(**{k.removeprefix("RELAYGATE_").lower(): v for k, v in self.env.items()}))
        )
        if self.redis is not None:
            self.service = self._start_service()
        super().start(timeout)

    def _start_service(self) -> subprocess.Popen[bytes]:
        log = self.log_path.with_name(f"{self.log_path.stem}.service{self.log_path.suffix}")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "relaygate",
                    "service",
                    "run",
                    GATEWAY_MODULE,
                    "--redis",
                    self.redis.url,
                ],
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _processes(self) -> list[psutil.Process]:
        procs = [self.process] if self.process is not None else []
        for child in (self.service, self.redis.process if self.redis is not None else None):
            if child is not None:
                procs.append(psutil.Process(child.pid))
        if self.postgres is not None:
            postmaster = psutil.Process(int((self.postgres.data / "postmaster.pid").read_text().split()[0]))
            with contextlib.suppress(psutil.NoSuchProcess):
                procs += [postmaster, *postmaster.children(recursive=True)]
        return procs

    def cpu_by_part(self) -> dict[str, float]:
        """CPU seconds so far of the node (``gateway``), the ``service`` node and ``redis``-server,
        each read from its own ``/proc/<pid>/stat`` (through psutil)."""
        parts: dict[str, float] = {}
        named = {"gateway": self.process, "service": self.service}
        if self.redis is not None:
            named["redis"] = self.redis.process
        for name, proc in named.items():
            if proc is not None:
                times = psutil.Process(proc.pid).cpu_times()
                parts[name] = float(times.user + times.system)
        return parts

    def cpu(self) -> float:
        """As the base, tolerating PostgreSQL backends that exit meanwhile (pool overflow
        connections closing); their CPU is then no longer counted."""
        total = 0.0
        for process in self._processes():
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += float(times.user + times.system)
        return total

    def alive(self) -> bool:
        return super().alive() and (self.service is None or self.service.poll() is None)

    def stop(self) -> None:
        super().stop()
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait(timeout=5)
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self.postgres is not None:
            self.postgres.close()
            self.postgres = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
