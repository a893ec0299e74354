"""Prometheus metrics of the whole node, one registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "relaygate_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "relaygate_http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=REGISTRY
)
SOCKETS_OPEN = Gauge("relaygate_sockets_open", "Open channel sockets", registry=REGISTRY)
CHANNELS_JOINED = Gauge("relaygate_channels_joined", "Joined channels", ["prefix"], registry=REGISTRY)
CHANNEL_JOINS = Counter("relaygate_channel_joins_total", "Successful channel joins", registry=REGISTRY)
CHANNEL_MESSAGES = Counter(
    "relaygate_channel_messages_total", "Channel frames", ["direction"], registry=REGISTRY
)
SLOW_CONSUMERS = Counter(
    "relaygate_slow_consumer_closes_total", "Sockets closed for not keeping up", registry=REGISTRY
)
PUBSUB_BROADCASTS = Counter(
    "relaygate_pubsub_broadcasts_total", "PubSub broadcasts", ["direction"], registry=REGISTRY
)
PUBSUB_PUBLISH_LATENCY = Histogram(
    "relaygate_pubsub_publish_seconds", "Redis publish latency", registry=REGISTRY
)
PUBSUB_RECONNECTS = Counter("relaygate_pubsub_reconnects_total", "Redis reconnects", registry=REGISTRY)
HISTORY_APPENDS = Counter(
    "relaygate_history_appends_total", "Broadcasts appended to a topic's history", registry=REGISTRY
)
HISTORY_RECOVERIES = Counter(
    "relaygate_history_recoveries_total",
    "Joins that asked to recover (result: succeeded/failed; reason: why it failed)",
    ["result", "reason"],
    registry=REGISTRY,
)
HISTORY_REPLAYED = Counter(
    "relaygate_history_replayed_total",
    "Broadcasts replayed from history to a joining channel",
    registry=REGISTRY,
)
PRESENCE_ENTRIES = Gauge(
    "relaygate_presence_entries", "Presence entries tracked on this node", registry=REGISTRY
)
RATE_LIMIT_REJECTIONS = Counter(
    "relaygate_rate_limit_rejections_total", "Requests refused by a rate limit", ["scope"], registry=REGISTRY
)
MAIL_DELIVERIES = Counter("relaygate_mail_deliveries_total", "Mail deliveries", ["result"], registry=REGISTRY)
DB_POOL_CHECKED_OUT = Gauge("relaygate_db_pool_checked_out", "DB connections in use", registry=REGISTRY)
