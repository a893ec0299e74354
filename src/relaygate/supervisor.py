"""``relaygate serve --workers N``: N worker processes serving one port, each a cluster node.

Every worker binds its own listening socket with ``SO_REUSEPORT``, so the kernel spreads new
connections over the workers (no shared accept queue, no thundering herd), and every worker is a
full node with its own name, joined to the others through Redis (PubSub, Presence, gateway).
That is how one machine uses every core, and how it holds more sockets than one process's
open-files limit allows. The supervisor keeps a bound, non-listening socket on the port (it
reserves the port and resolves port 0), restarts a worker that dies, and on SIGTERM or SIGINT
sends SIGTERM to every worker, which drains its sockets (close 1012) before it exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger("relaygate.supervisor")

WORKER_FLAG = "--reuse-port"
"""The hidden ``serve`` option a worker runs with: bind with SO_REUSEPORT, leave migrations to the supervisor."""


def reuse_port_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT (listening, unless ``listen`` is False)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(4096)
            sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    def __init__(
        self, workers: int, host: str, port: int, node_name: str | None, app: str | None = None
    ) -> None:
        self.count = workers
        self.app = app
        self.host = host
        self.holder = reuse_port_socket(host, port, listen=False)
        self.port = int(self.holder.getsockname()[1])
        self.base = node_name or f"{socket.gethostname()}:{self.port}"
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.stopping = False

    def node_name(self, index: int) -> str:
        return f"{self.base}/w{index}"

    def worker_argv(self) -> list[str]:
        """The command of one worker: it must bind (host, port) with SO_REUSEPORT."""
        serve = [sys.executable, "-m", "relaygate", "serve", "--host", self.host, "--port", str(self.port)]
        return [*serve, *(["--app", self.app] if self.app else []), WORKER_FLAG]

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RELAYGATE_NODE_NAME": self.node_name(index)}
        # own session: a terminal's Ctrl-C reaches the supervisor only, which then stops each
        # worker once (a second signal would make uvicorn skip the drain)
        return subprocess.Popen(self.worker_argv(), env=env, start_new_session=True)  # noqa: S603 (our own argv)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("stopping %d workers (signal %d)", self.count, signum)
        self.stopping = True
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Start the workers and supervise them until a signal stops them; the exit code."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        restarted = [0.0] * self.count
        try:
            for index in range(self.count):
                self.procs[index] = self._spawn(index)
            log.info("%d workers on %s:%d", self.count, self.host, self.port)
            while True:
                alive = 0
                for index, proc in enumerate(self.procs):
                    code = None if proc is None else proc.poll()
                    if code is None:
                        alive += 1
                    elif not self.stopping and time.monotonic() - restarted[index] > 1.0:
                        log.warning("worker %s exited with %s; restarting it", self.node_name(index), code)
                        restarted[index] = time.monotonic()
                        self.procs[index] = self._spawn(index)
                        alive += 1
                if self.stopping and not alive:
                    break
                time.sleep(0.1)
        finally:
            self._stop(signal.SIGTERM, None)
            for proc in self.procs:
                if proc is not None:
                    proc.wait()
            self.holder.close()
        return 0 if all(proc is not None and proc.returncode == 0 for proc in self.procs) else 1
