"""The gateway cluster fixtures (gateways in-process, service nodes as processes) for fault tests."""

from tests.gateway.conftest import make_cluster, start_node

__all__ = ["make_cluster", "start_node"]
