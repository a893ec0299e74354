from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from relaygate.accounts.passwords import Passwords
from tests.accounts.support import FAST_HASHER
from tests.web.routers.support import Users


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The shared app with cheap (still argon2id) password hashing."""
    app.state.relaygate.accounts.passwords = Passwords(FAST_HASHER)
    return app


@pytest.fixture
def users(http: httpx.AsyncClient, app: FastAPI) -> Users:
    return Users(http, app)
