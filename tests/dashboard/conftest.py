"""Fixtures of the dashboard tests: an administrator's and a user's tokens on the in-process app."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.web.support import Tokens, make_tokens

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""The dashboard does not depend on the database engine: its in-process tests run on SQLite only."""


@pytest.fixture
async def tokens(app: FastAPI) -> Tokens:
    return await make_tokens(app)
