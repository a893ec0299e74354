"""The chat context."""
