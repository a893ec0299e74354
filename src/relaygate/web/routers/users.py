"""``/api/v1/users`` and ``/api/v1/me``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from relaygate.contexts.accounts import (
    Account,
    Accounts,
    InvalidInput,
    NewUser,
    NotAllowed,
    Principal,
    UserChanges,
    UserNotFound,
)
from relaygate.web.auth import AccountsDep, Caller
from relaygate.web.pagination import CursorCodec, next_link
from relaygate.web.problem_json import Problem
from relaygate.web.responses import JSON

router = APIRouter(prefix="/api/v1", tags=["users"])
PRIVATE = {"Cache-Control": "private, no-cache"}
MAX_DB_ID = 2**31 - 1


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def user_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "subname": account.subname,
        "email": account.email,
        "job": account.job,
        "role": account.role,
        "inserted_at": iso(account.inserted_at),
        "updated_at": iso(account.updated_at),
    }


def _cursors(request: Request) -> CursorCodec:
    return CursorCodec(request.app.state.relaygate.settings.signing_key(), "users")


async def _get(accounts: Accounts, user_id: int) -> Account:
    if user_id > MAX_DB_ID:
        raise Problem(404, "No such user.")
    try:
        return await accounts.get_user(user_id)
    except UserNotFound:
        raise Problem(404, "No such user.") from None


@router.post("/users", status_code=201)
async def create_user(body: NewUser, accounts: AccountsDep) -> JSON:
    """Register; without a password one is generated and emailed (never returned)."""
    try:
        account = await accounts.register(body)
    except InvalidInput as exc:
        raise Problem(422, "The user cannot be created.", errors=exc.errors) from None
    return JSON(
        {"data": user_json(account)}, status_code=201, headers={"Location": f"/api/v1/users/{account.id}"}
    )


@router.get("/users")
async def list_users(
    request: Request,
    caller: Caller,
    accounts: AccountsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> JSON:
    cursors = _cursors(request)
    position = cursors.decode(after) if after is not None else None
    users, more = await accounts.list_users(after=position, limit=limit)
    cursor = cursors.encode(users[-1].id) if more and users else None
    headers = dict(PRIVATE)
    if cursor is not None:
        headers["Link"] = next_link(request.url, cursor, limit)
    return JSON({"data": [user_json(user) for user in users], "meta": {"next": cursor}}, headers=headers)


@router.get("/me")
async def me(caller: Caller, accounts: AccountsDep) -> JSON:
    return JSON({"data": user_json(await _get(accounts, caller.user_id))}, headers=PRIVATE)


@router.get("/users/{user_id:int}")
async def get_user(user_id: int, caller: Caller, accounts: AccountsDep) -> JSON:
    return JSON({"data": user_json(await _get(accounts, user_id))}, headers=PRIVATE)


def _check_allowed(caller: Principal, user_id: int) -> None:
    if caller.user_id != user_id and not caller.is_admin:
        raise Problem(403, "Only the user or an admin may do this.")


@router.patch("/users/{user_id:int}")
async def update_user(user_id: int, body: UserChanges, caller: Caller, accounts: AccountsDep) -> JSON:
    _check_allowed(caller, user_id)
    await _get(accounts, user_id)
    try:
        account = await accounts.update_user(caller, user_id, body)
    except NotAllowed as exc:
        raise Problem(403, str(exc)) from None
    except UserNotFound:
        raise Problem(404, "No such user.") from None
    except InvalidInput as exc:
        raise Problem(422, "The user cannot be changed.", errors=exc.errors) from None
    return JSON({"data": user_json(account)})


@router.delete("/users/{user_id:int}", status_code=204)
async def delete_user(user_id: int, caller: Caller, accounts: AccountsDep) -> Response:
    _check_allowed(caller, user_id)
    await _get(accounts, user_id)
    try:
        await accounts.delete_user(caller, user_id)
    except UserNotFound:
        raise Problem(404, "No such user.") from None
    return Response(status_code=204)
