"""HTTP helpers of the accounts route tests."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from relaygate.accounts import NewUser
from tests.accounts.support import PASSWORD


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


async def mailbox(http: httpx.AsyncClient, count: int = 1) -> list[dict[str, str]]:
    """The dev mailbox once it holds ``count`` messages (delivery runs in the background)."""
    for _ in range(500):
        messages: list[dict[str, str]] = (await http.get("/dev/mailbox")).json()["data"]
        if len(messages) >= count:
            return messages
        await asyncio.sleep(0.01)
    raise AssertionError("mail was not delivered")
