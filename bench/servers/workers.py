"""The bench app served by N worker processes on one port, as ``relaygate serve --workers N`` runs.

``python -m bench.servers.workers --port P --workers N [uvicorn options]`` runs
:class:`relaygate.supervisor.Supervisor`; each worker (``--child``) serves
``bench.servers.relaygate_app`` on its own SO_REUSEPORT socket as a cluster node through
``RELAYGATE_REDIS_URL``.
"""

from __future__ import annotations

import argparse
import sys

from relaygate.supervisor import Supervisor, reuse_port_socket


class BenchSupervisor(Supervisor):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.workers, "127.0.0.1", args.port, "bench")
        self.options = ["--ws", args.ws, "--loop", args.loop, "--http", args.http]

    def worker_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.servers.workers",
            "--child",
            "--port",
            str(self.port),
            *self.options,
        ]


def child(args: argparse.Namespace) -> None:
    from bench.servers.relaygate_app import build
    from bench.servers.serving import run

    app, endpoint = build()
    run(app, endpoint, args, [reuse_port_socket("127.0.0.1", args.port)])


def main() -> int:
    from bench.servers.serving import arguments

    parser = arguments(__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--ws", default="websockets-sansio")
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    return BenchSupervisor(args).run()


if __name__ == "__main__":
    sys.exit(main())
