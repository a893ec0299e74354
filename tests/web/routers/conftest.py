from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from relaygate.contexts.accounts import NewUser
from relaygate.contexts.accounts.passwords import Passwords
from tests.contexts.accounts.support import FAST_HASHER, PASSWORD


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The shared app with cheap (still argon2id) password hashing."""
    app.state.relaygate.accounts.passwords = Passwords(FAST_HASHER)
    return app


class Users:
    """Registers and logs in users through the HTTP API."""

    def __init__(self, http: httpx.AsyncClient, app: FastAPI) -> None:
        self.http = http
        self.app = app
        self.count = 0

    def body(self, **fields: object) -> dict[str, object]:
        self.count += 1
        return {
            "name": "Ada",
            "subname": "Lovelace",
            "email": f"user{self.count}@example.com",
            "job": "Engineer",
            "password": PASSWORD,
        } | fields

    async def create(self, *, admin: bool = False, **fields: object) -> tuple[dict[str, object], str]:
        """(user, token) of a new user."""
        body = self.body(**fields)
        if admin:  # admins are made by the CLI (relaygate users create --admin), not over HTTP
            account = await self.app.state.relaygate.accounts.register(NewUser(**body), role="admin")
            user: dict[str, object] = {"id": account.id, "email": account.email, "role": "admin"}
        else:
            response = await self.http.post("/api/v1/users", json=body)
            assert response.status_code == 201, response.text
            user = response.json()["data"]
        token = await self.login(str(body["email"]), str(body["password"]))
        return user, token

    async def login(self, email: str, password: str) -> str:
        response = await self.http.post("/api/v1/sessions", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        token: str = response.json()["data"]["token"]
        return token


@pytest.fixture
def users(http: httpx.AsyncClient, app: FastAPI) -> Users:
    return Users(http, app)
