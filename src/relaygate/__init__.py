"""Relaygate: a realtime API framework speaking the Phoenix Channels protocol.

``relaygate.App`` describes an application (see :mod:`relaygate.node`); it is imported on first
use so that processes needing only the client or the service SDK stay light.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["App"]

if TYPE_CHECKING:
    from relaygate.node import App


def __getattr__(name: str) -> Any:
    if name == "App":
        from relaygate.node import App

        return App
    raise AttributeError(f"module 'relaygate' has no attribute {name!r}")
