"""The reference app's Alembic revisions (run by ``relaygate migrate``)."""
