"""Logs with request ids, Prometheus metrics."""
