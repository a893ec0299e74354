"""How every Relaygate bench server runs: ``relaygate serve``'s uvicorn configuration and gc freeze."""

from __future__ import annotations

import argparse
import gc
import socket

import uvicorn
from starlette.types import ASGIApp

from bench.servers import raise_fd_limit
from relaygate.channels import Endpoint
from relaygate.web.server import server_config


def arguments(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="uvloop")
    parser.add_argument("--http", default="httptools")
    return parser


def run(
    app: ASGIApp, endpoint: Endpoint, args: argparse.Namespace, sockets: list[socket.socket] | None = None
) -> None:
    """Serve ``app`` (already wrapped by ``endpoint``); ``sockets``: a worker's SO_REUSEPORT socket."""
    raise_fd_limit()
    config = server_config(
        app, "127.0.0.1", args.port, ws=endpoint.websocket_protocol(), http=endpoint.http_protocol(args.http)
    )
    config.loop, config.backlog = args.loop, 4096
    gc.collect()
    gc.freeze()  # as relaygate serve does once started: full collections skip what lives forever
    uvicorn.Server(config).run(sockets=sockets)
