"""Relaygate: a realtime API platform speaking the Phoenix Channels protocol."""

__version__ = "0.1.0"

__all__ = ["__version__"]
