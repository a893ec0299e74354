"""A full node served as ``relaygate serve`` serves it: uvicorn for HTTP, the endpoint's own
WebSocket transport (``python -m bench.servers.node_serve --port N``; settings from the
``RELAYGATE_*`` environment, as :class:`bench.servers.node.NodeProcess` sets it)."""

from __future__ import annotations

from bench.servers.serving import arguments, run
from relaygate.node import create_app


def main() -> None:
    args = arguments(__doc__).parse_args()
    app = create_app()
    endpoint = app.state.relaygate.endpoint
    run(endpoint.wrap(app), endpoint, args)


if __name__ == "__main__":
    main()
