"""Alembic environment: always runs on the connection handed in by relaygate.db.migrate."""

from __future__ import annotations

from alembic import context

from relaygate.db.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `relaygate migrate`, which provides the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
