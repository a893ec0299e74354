"""A channel socket authenticated with the framework's access tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaygate.accounts import socket_authenticator, socket_id, socket_topics
from relaygate.channels import Socket

if TYPE_CHECKING:
    from relaygate.node.runtime import Node


def token_socket(node: Node, path: str = "/socket") -> Socket:
    """A socket that admits a valid access token (``token`` param or phoenix.js ``authToken``) and
    refuses others with 403; its id is ``users_socket:<user_id>``, so deleting the user or logging
    out disconnects it. Assigns: ``user_id``, ``role``, ``jti``, ``name``."""
    return Socket(
        path, connect=socket_authenticator(node.accounts), id=socket_id, disconnect_topics=socket_topics
    )
