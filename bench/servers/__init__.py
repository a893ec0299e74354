"""Systems under test: how to start each one, and a handle that measures and always kills it.

A server module lives next to this file (``bench/servers/<module>.py``) and is registered in
:data:`SERVERS` with the wire protocol the load generator must speak to it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class UvicornOptions:
    """uvicorn implementation choices; the defaults are the fastest measured here (see RESULTS.md)."""

    ws: str = "websockets-sansio"
    loop: str = "uvloop"
    http: str = "httptools"

    def argv(self) -> list[str]:
        return [
            "--ws",
            self.ws,
            "--loop",
            self.loop,
            "--http",
            self.http,
            # Phoenix sends no WebSocket pings and never compresses by default: same for every peer.
            "--ws-ping-interval",
            "0",
            "--ws-per-message-deflate",
            "false",
            "--backlog",
            "4096",
            "--log-level",
            "warning",
            "--no-access-log",
            "--lifespan",
            "on",
        ]

    def describe(self) -> str:
        return f"uvicorn --ws {self.ws} --loop {self.loop} --http {self.http}"


@dataclass(frozen=True)
class NodeSetup:
    """A full Relaygate node on a seeded database (:class:`bench.servers.node.NodeProcess`)."""

    gateway: str | None = None
    """``"local"``: the bench gateway functions run in the node; ``"redis"``: on a service node."""
    database: str = "sqlite"
    """``"postgres"``: a throwaway PostgreSQL server, whose CPU counts as the system's."""


@dataclass(frozen=True)
class ServerSpec:
    name: str
    protocol: str
    """Wire protocol of the load generator's clients: ``phoenix`` (V2 JSON), ``socketio`` (EIO 4), ``http``."""
    path: str
    """Request target of the WebSocket upgrade, query included."""
    argv: Callable[[int, UvicornOptions], list[str]]
    describe: Callable[[UvicornOptions], str] = field(default=lambda options: "")
    nodes: int = 1
    """More than one: a cluster of that many server processes sharing a throwaway Redis."""
    node: NodeSetup | None = None
    """Set: seed a database first, then start ``argv`` on it (and a service node when asked)."""
    workers: int = 0
    """More than one: ``argv`` is a supervisor of that many worker processes on one port (each a
    cluster node through a throwaway Redis), measured as one system."""


def _uvicorn(factory: str) -> Callable[[int, UvicornOptions], list[str]]:
    def argv(port: int, options: UvicornOptions) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *options.argv(),
        ]

    return argv


def _relaygate(port: int, options: UvicornOptions) -> list[str]:
    """As ``relaygate serve``: uvicorn for HTTP, the endpoint's own WebSocket transport."""
    module = "bench.servers.relaygate_app"
    return [sys.executable, "-m", module, "--port", str(port), "--loop", options.loop, "--http", options.http]


def _relaygate_serve(port: int, options: UvicornOptions) -> list[str]:
    """The node as deployed: ``relaygate serve`` (its uvicorn configuration, HTTP protocol and
    WebSocket transport; uvloop and httptools when installed, so ``options`` do not apply)."""
    return [sys.executable, "-m", "relaygate", "serve", "--host", "127.0.0.1", "--port", str(port)]


def _node_serve(port: int, options: UvicornOptions) -> list[str]:
    """A full node as ``relaygate serve`` runs it (the endpoint's own WebSocket transport)."""
    module = "bench.servers.node_serve"
    return [sys.executable, "-m", module, "--port", str(port), "--loop", options.loop, "--http", options.http]


def _relaygate_describe(options: UvicornOptions) -> str:
    return f"Relaygate WebSocket transport + uvicorn --loop {options.loop} --http {options.http}"


def _workers(count: int) -> Callable[[int, UvicornOptions], list[str]]:
    def argv(port: int, options: UvicornOptions) -> list[str]:
        flags = ["--ws", options.ws, "--loop", options.loop, "--http", options.http]
        return [
            sys.executable,
            "-m",
            "bench.servers.workers",
            "--port",
            str(port),
            "--workers",
            str(count),
            *flags,
        ]

    return argv


def _bare_ws(port: int, options: UvicornOptions) -> list[str]:
    return [sys.executable, "-m", "bench.servers.bare_ws", "--port", str(port)]


PHOENIX_PATH = "/socket/websocket?vsn=2.0.0"
APP = "relaygate.node:create_app"

SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "relaygate",
            "phoenix",
            PHOENIX_PATH,
            _relaygate,
            _relaygate_describe,
        ),
        ServerSpec(
            "relaygate-redis",
            "phoenix",
            PHOENIX_PATH,
            _relaygate,
            lambda o: f"2 nodes ({_relaygate_describe(o)}) + redis-server, RedisPubSub + RedisPresence",
            nodes=2,
        ),
        ServerSpec(
            "relaygate-workers",
            "phoenix",
            PHOENIX_PATH,
            _workers(4),
            lambda o: f"4 worker processes on one port (SO_REUSEPORT, {o.describe()}) + redis-server",
            workers=4,
        ),
        ServerSpec(
            "python-socketio",
            "socketio",
            "/socket.io/?EIO=4&transport=websocket",
            _uvicorn("bench.servers.socketio_app:create_app"),
            lambda o: o.describe(),
        ),
        ServerSpec(
            "relaygate-gateway",
            "phoenix",
            PHOENIX_PATH,
            _node_serve,
            lambda o: (
                f"relaygate.app as `relaygate serve` runs it ({_relaygate_describe(o)}), local gateway functions, SQLite"
            ),
            node=NodeSetup(gateway="local"),
        ),
        ServerSpec(
            "relaygate-gateway-redis",
            "phoenix",
            PHOENIX_PATH,
            _node_serve,
            lambda o: (
                f"relaygate.app as `relaygate serve` runs it ({_relaygate_describe(o)}) + redis-server + `relaygate service run`, SQLite"
            ),
            node=NodeSetup(gateway="redis"),
        ),
        *(
            ServerSpec(
                f"relaygate-api{suffix}",
                "http",
                "",
                _relaygate_serve,
                lambda o, db=db: (
                    f"`relaygate serve` (uvicorn + Relaygate's HTTP/1.1 protocol on httptools, uvloop), {db}"
                ),
                node=NodeSetup(database=database),
            )
            for suffix, database, db in (("", "sqlite", "SQLite"), ("-pg", "postgres", "PostgreSQL"))
        ),
        *(
            ServerSpec(
                f"{name}{suffix}",
                "http",
                "",
                _uvicorn(factory),
                lambda o, what=what, db=db: f"{what} ({o.describe()}), {db}",
                node=NodeSetup(database=database),
            )
            for name, factory, what in (
                ("bare-fastapi", "bench.servers.bare_rest:create_app", "FastAPI + SQLAlchemy ORM routes"),
                (
                    "bare-starlette",
                    "bench.servers.bare_rest:create_starlette_app",
                    "Starlette routes on the driver with prepared statements",
                ),
            )
            for suffix, database, db in (("", "sqlite", "SQLite"), ("-pg", "postgres", "PostgreSQL"))
        ),
        ServerSpec(
            "bare-websockets",
            "phoenix",
            PHOENIX_PATH,
            _bare_ws,
            lambda o: "websockets.asyncio.server + uvloop, minimal Phoenix V2 subset",
        ),
    )
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(hard)


class ServerProcess:
    """One server child process on a free loopback port. Use as a context manager: it is always killed."""

    def __init__(
        self,
        spec: ServerSpec,
        options: UvicornOptions,
        log_path: Path,
        env: dict[str, str] | None = None,
        profile_path: Path | None = None,
    ) -> None:
        self.spec = spec
        self.options = options
        self.log_path = log_path
        self.profile_path = profile_path
        """When set, ``py-spy record`` samples the server into this file (collapsed stacks)."""
        self.env = env or {}
        self.port = 0
        self.popen: subprocess.Popen[bytes] | None = None
        self.process: psutil.Process | None = None
        self.profiler: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.spec.path}"

    @property
    def urls(self) -> list[str]:
        """Every node's URL (one here; scenarios spread clients over them)."""
        return [self.url]

    def start(self, timeout: float = 30.0) -> None:
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            **self.env,
        }
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                self.spec.argv(self.port, self.options),
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=raise_fd_limit,
                start_new_session=True,
            )
        self.process = psutil.Process(self.popen.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited with {self.popen.returncode}: {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                if self.profile_path is not None:
                    self._start_profiler(self.profile_path)
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.spec.name} did not listen within {timeout}s: {self.log_tail()}")

    def _start_profiler(self, path: Path) -> None:
        assert self.popen is not None
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.profiler = subprocess.Popen(
            [binary, "record", "--pid", str(self.popen.pid), "--rate", "200", "--format", "raw",
             "--nonblocking", "--output", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def _stop_profiler(self) -> None:
        if self.profiler is None or self.profiler.poll() is not None:
            return
        self.profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.profiler.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.profiler.kill()
            self.profiler.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _processes(self) -> list[psutil.Process]:
        """The processes whose CPU and memory count as this system's (subclasses add children)."""
        assert self.process is not None
        return [self.process]

    def rss(self) -> int:
        return sum(int(p.memory_info().rss) for p in self._processes())

    def cpu(self) -> float:
        """User + system CPU seconds consumed so far."""
        return sum(float(t.user + t.system) for t in (p.cpu_times() for p in self._processes()))

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        self._stop_profiler()
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class ClusterProcess(ServerProcess):
    """``spec.nodes`` server processes sharing one throwaway redis-server; measured as one system.

    ``url`` is node 1 (where publishers go), ``urls`` all nodes; CPU and RSS sum every node and Redis.
    Each node gets ``RELAYGATE_REDIS_URL`` and its own ``RELAYGATE_NODE_NAME``.
    """

    def __init__(self, spec: ServerSpec, options: UvicornOptions, log_path: Path) -> None:
        super().__init__(spec, options, log_path)
        self.redis: Any = None
        self.nodes: list[ServerProcess] = []

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout: float = 30.0) -> None:
        from tests.servers import RedisServer  # the test suite's throwaway Redis (free port, no persistence)

        self.redis = RedisServer()
        self.redis.start()
        for i in range(self.spec.nodes):
            env = {"RELAYGATE_REDIS_URL": self.redis.url, "RELAYGATE_NODE_NAME": f"bench-{i + 1}"}
            log = self.log_path.with_name(f"{self.log_path.stem}.node{i + 1}{self.log_path.suffix}")
            self.nodes.append(self._start_node(ServerProcess(self.spec, self.options, log, env), timeout))
        self.port = self.nodes[0].port

    @staticmethod
    def _start_node(node: ServerProcess, timeout: float, attempts: int = 3) -> ServerProcess:
        """Start until the node itself listens on its port (retrying on another port).

        The port is picked free, then released until uvicorn binds it after its lifespan (the
        Redis connections) has started: meanwhile another process on this shared machine may
        take it, and the readiness probe would then reach that process instead.
        """
        for _ in range(attempts):
            node.start(timeout)
            deadline = time.monotonic() + timeout
            while node.alive() and time.monotonic() < deadline:
                if listens(node, node.port):
                    return node
                time.sleep(0.05)
            node.stop()
        raise RuntimeError(f"node did not start after {attempts} attempts: {node.log_tail()}")

    def _processes(self) -> list[psutil.Process]:
        procs = [node.process for node in self.nodes if node.process is not None]
        if self.redis is not None and self.redis.process is not None:
            procs.append(psutil.Process(self.redis.process.pid))
        return procs

    def alive(self) -> bool:
        return bool(self.nodes) and all(node.alive() for node in self.nodes)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(f"[node {i + 1}] {node.log_tail(lines)}" for i, node in enumerate(self.nodes))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.redis is not None:
            self.redis.close()
            self.redis = None


class WorkersProcess(ServerProcess):
    """A supervisor and ``spec.workers`` workers on one port, plus their Redis; measured as one system."""

    def __init__(self, spec: ServerSpec, options: UvicornOptions, log_path: Path) -> None:
        super().__init__(spec, options, log_path)
        self.redis: Any = None

    def start(self, timeout: float = 60.0) -> None:
        from tests.servers import RedisServer  # the test suite's throwaway Redis (free port, no persistence)

        self.redis = RedisServer()
        self.redis.start()
        self.env = {"RELAYGATE_REDIS_URL": self.redis.url}
        super().start(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the first worker answered: wait for all of them
            workers = self._workers()
            if len(workers) == self.spec.workers and all(_listens(p, self.port) for p in workers):
                return
            time.sleep(0.1)
        raise TimeoutError(
            f"{self.spec.workers} workers did not all listen within {timeout}s: {self.log_tail()}"
        )

    def _workers(self) -> list[psutil.Process]:
        assert self.process is not None
        try:
            return list(self.process.children())
        except psutil.Error:
            return []

    def _processes(self) -> list[psutil.Process]:
        procs = [*super()._processes(), *self._workers()]
        if self.redis is not None and self.redis.process is not None:
            procs.append(psutil.Process(self.redis.process.pid))
        return procs

    def stop(self) -> None:
        super().stop()
        if self.redis is not None:
            self.redis.close()
            self.redis = None


def _listens(process: psutil.Process, port: int) -> bool:
    try:
        connections = process.net_connections("tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def listens(server: ServerProcess, port: int) -> bool:
    """Whether ``server``'s own process has a listening socket on ``port``."""
    assert server.process is not None
    return _listens(server.process, port)


def launch(
    spec: ServerSpec, options: UvicornOptions, log_path: Path, profile_path: Path | None = None
) -> ServerProcess:
    """The process handle for ``spec``: one server, or a cluster when ``spec.nodes > 1``.

    ``profile_path`` samples a single server with py-spy (clusters are not profiled)."""
    if spec.node is not None:
        from bench.servers.node import NodeProcess  # imports relaygate: only the node systems need it

        return NodeProcess(spec, options, log_path, profile_path)
    if spec.nodes > 1:
        return ClusterProcess(spec, options, log_path)
    if spec.workers > 1:
        return WorkersProcess(spec, options, log_path)
    return ServerProcess(spec, options, log_path, profile_path=profile_path)
