"""Helpers of the HTTP tests: real users and access tokens from the accounts context."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from relaygate.accounts import NewUser
from relaygate.accounts.passwords import Passwords
from tests.accounts.support import FAST_HASHER, PASSWORD

_numbers = itertools.count()


@dataclass(frozen=True)
class Tokens:
    admin: str
    user: str

    def headers(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {getattr(self, who)}"}


async def issue_token(app: FastAPI, role: str) -> str:
    """Register a user with ``role`` through the accounts context and issue them a token."""
    accounts = app.state.relaygate.accounts
    accounts.passwords = Passwords(FAST_HASHER)
    number = next(_numbers)
    new = NewUser(name="Test", subname=role, email=f"{role}{number}@example.com", job="QA", password=PASSWORD)
    account = await accounts.register(new, role=role)
    token: str = accounts.tokens.issue(account.id, account.created_us).token
    return token


async def make_tokens(app: FastAPI) -> Tokens:
    return Tokens(admin=await issue_token(app, "admin"), user=await issue_token(app, "user"))


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of ``response``, which must have ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body
