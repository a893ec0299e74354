"""The app with cheap password hashing and the ``users`` helper, as for the accounts routes."""

from tests.web.routers.conftest import app, users

__all__ = ["app", "users"]
