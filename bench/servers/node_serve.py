"""A full node served as ``relaygate serve`` serves it: uvicorn for HTTP, the endpoint's own
WebSocket transport (``python -m bench.servers.node_serve --port N``; settings from the
``RELAYGATE_*`` environment, as :class:`bench.servers.node.NodeProcess` sets it)."""

from __future__ import annotations

import argparse

import uvicorn

from bench.servers import raise_fd_limit
from relaygate.node import create_app
from relaygate.web.server import server_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="uvloop")
    parser.add_argument("--http", default="httptools")
    args = parser.parse_args()
    raise_fd_limit()
    app = create_app()
    endpoint = app.state.relaygate.endpoint
    config = server_config(endpoint.wrap(app), "127.0.0.1", args.port, ws=endpoint.websocket_protocol())
    config.loop, config.http, config.backlog, config.access_log = args.loop, args.http, 4096, False
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
