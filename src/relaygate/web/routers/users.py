"""``/api/v1/users`` and ``/api/v1/me``: user data, so ``Cache-Control: private, no-cache``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from relaygate.accounts import (
    Account,
    Accounts,
    InvalidInput,
    NewUser,
    NotAllowed,
    QuickSignUp,
    UserNotFound,
    UserPatch,
)
from relaygate.web.conditional import Validators
from relaygate.web.cursors import decode_cursor, encode_cursor
from relaygate.web.problems import Problem
from relaygate.web.resources import Call, Page, Representation, ResourceGroup, content_etag

PREFIX = "/api/v1"


class UserView(BaseModel):
    """A user as the API shows it (never with a password or its hash)."""

    id: int
    name: str
    subname: str
    email: str
    job: str
    role: Literal["user", "admin"]
    inserted_at: datetime
    updated_at: datetime


class UserQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=50, ge=1, le=200, description="Page size")
    after: str | None = Field(
        default=None, max_length=200, description="Cursor from `meta.next` or the `Link` header"
    )


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


def validators(account: Account) -> Validators:
    """A digest of the representation: it changes exactly when the user's JSON does."""
    return Validators(content_etag(orjson.dumps(user_json(account))), account.updated_at)


USER = Representation(schema=UserView, render=user_json, validators=validators, cache="private")


def accounts_of(call: Call) -> Accounts:
    accounts: Accounts = call.node.accounts
    return accounts


async def _user(call: Call, user_id: int) -> Account | None:
    try:
        return await accounts_of(call).get_user(user_id)
    except UserNotFound:
        return None


async def load_user(call: Call) -> Account | None:
    return await _user(call, call.params["id"])


async def load_me(call: Call) -> Account | None:
    return await _user(call, call.require_principal().user_id)


async def self_or_admin(call: Call) -> bool:
    principal = call.require_principal()
    return principal.is_admin or call.params.get("id") == principal.user_id


def location(account: Account) -> str:
    return f"{PREFIX}/users/{account.id}"


group = ResourceGroup(prefix=PREFIX, tag="users")
collection = group.resource("/users")
item = group.resource("/users/{id}", ids=("id",), load=load_user, representation=USER)
me = group.resource("/me", load=load_me, representation=USER)


def signup_group(body: type[NewUser] | type[QuickSignUp] = NewUser) -> ResourceGroup:
    """``POST /api/v1/users`` taking ``body`` (the full profile, or :class:`QuickSignUp`); it joins
    the other ``/users`` operations on one route."""
    signup = ResourceGroup(prefix=PREFIX, tag="users")

    @signup.resource("/users").post(
        body=body,
        representation=USER,
        status=201,
        location=location,
        summary="Register a user",
        description="Without `password` one is generated and emailed to the user (never returned).",
    )
    async def create_user(call: Call) -> Account:
        try:
            return await accounts_of(call).register(call.body.new_user())
        except InvalidInput as exc:
            raise Problem(422, "The user cannot be created.", errors=exc.errors) from None

    return signup


@collection.get(
    auth="user", query=UserQuery, page=USER, summary="List users", errors={400: "Tampered cursor"}
)
async def list_users(call: Call) -> Page:
    query: UserQuery = call.query
    secret = call.node.settings.signing_key()
    after = decode_cursor(query.after, secret) if query.after is not None else None
    if after is not None and type(after) is not int:
        raise Problem(400, "The cursor is not valid.")
    users, more = await accounts_of(call).list_users(after=after, limit=query.limit)
    cursor = encode_cursor(users[-1].id, secret) if more and users else None
    return Page(users, cursor)


@item.get(auth="user", summary="Show a user")
async def show_user(call: Call) -> Account:
    entity: Account = call.entity
    return entity


@me.get(auth="user", summary="The caller")
async def show_me(call: Call) -> Account:
    entity: Account = call.entity
    return entity


@item.patch(
    auth="user",
    authorize=self_or_admin,
    body=UserPatch,
    summary="Change a user (JSON merge patch)",
    description=(
        "Self or admin. `password` needs `current_password` (admins changing others don't); "
        "`role` only by an admin."
    ),
    errors={403: "Only an admin may change a role"},
)
async def update_user(call: Call) -> Account:
    patch: UserPatch = call.body
    try:
        return await accounts_of(call).update_user(
            call.require_principal(), call.params["id"], patch.changes(call.entity)
        )
    except NotAllowed as exc:
        raise Problem(403, str(exc)) from None
    except UserNotFound:
        raise Problem(404, "No resource at this address.") from None
    except InvalidInput as exc:
        raise Problem(422, "The user cannot be changed.", errors=exc.errors) from None


@item.delete(
    auth="user",
    authorize=self_or_admin,
    summary="Delete a user",
    description="Self or admin; their tokens stop working and their sockets are disconnected.",
)
async def delete_user(call: Call) -> None:
    try:
        await accounts_of(call).delete_user(call.require_principal(), call.params["id"])
    except UserNotFound:
        raise Problem(404, "No resource at this address.") from None
