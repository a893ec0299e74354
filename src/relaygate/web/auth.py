"""Bearer authentication of HTTP requests through ``node.accounts``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from relaygate.contexts.accounts import Accounts, Principal
from relaygate.telemetry.logging import user_id_var
from relaygate.web.problem_json import Problem

CHALLENGE = {"WWW-Authenticate": "Bearer"}
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.relaygate.accounts
    return accounts


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def current_principal(request: Request) -> Principal:
    """The caller, or 401 with ``WWW-Authenticate: Bearer``."""
    token = bearer_token(request)
    if token is None:
        raise Problem(401, "Authentication required.", headers=CHALLENGE)
    principal = await accounts_of(request).authenticate_token(token)
    if principal is None:
        raise Problem(401, "The access token is invalid, expired or revoked.", headers=INVALID_TOKEN)
    user_id_var.set(principal.user_id)
    return principal


Caller = Annotated[Principal, Depends(current_principal)]
AccountsDep = Annotated[Accounts, Depends(accounts_of)]
