"""The live dashboard at ``/dashboard`` (administrators): the cluster on Relaygate's own channels.

Every node mounts it: :class:`Dashboard` (reports and views, started with the node),
``dashboard_socket`` (``/dashboard/socket`` with the admin-only ``admin:dashboard`` channel) and
``group`` (the page and its assets, a resource group).
"""

from relaygate.dashboard.channel import DashboardChannel, dashboard_socket
from relaygate.dashboard.errors import RecentErrors
from relaygate.dashboard.runtime import CONTROL, TOPIC, Dashboard, DashboardHost
from relaygate.dashboard.web import group

__all__ = [
    "CONTROL",
    "TOPIC",
    "Dashboard",
    "DashboardChannel",
    "DashboardHost",
    "RecentErrors",
    "dashboard_socket",
    "group",
]
