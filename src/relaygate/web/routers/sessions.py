"""``/api/v1/sessions``: log in (issue a token) and log out (revoke it)."""

from __future__ import annotations

from pydantic import BaseModel

from relaygate.accounts import Credentials, InvalidCredentials, LoginThrottled
from relaygate.telemetry.metrics import RATE_LIMIT_REJECTIONS
from relaygate.web.problems import Problem
from relaygate.web.resources import Call, Reply, ResourceGroup
from relaygate.web.routers.users import PREFIX, UserView, accounts_of, user_json


class SessionView(BaseModel):
    """A successful login; ``expire`` is the token's expiry in Unix seconds."""

    user: UserView
    token: str
    expire: int


group = ResourceGroup(prefix=PREFIX, tag="sessions")
sessions = group.resource("/sessions")


@sessions.post(
    body=Credentials,
    response_schema=SessionView,
    summary="Log in",
    description="Wrong email and wrong password get the same `401`; repeated failures get `429`.",
    errors={401: "Wrong email or password", 429: "Too many failed logins"},
)
async def login(call: Call) -> Reply:
    """The throttle runs here, not as the layer's rate limit: it reserves a failure before the
    password check and releases it on success, so only failed attempts count."""
    try:
        session = await accounts_of(call).login(call.body, call.client_host)
    except InvalidCredentials:
        raise Problem(401, "Invalid email or password.", headers={"WWW-Authenticate": "Bearer"}) from None
    except LoginThrottled as exc:
        RATE_LIMIT_REJECTIONS.labels("login").inc()
        raise Problem(
            429, "Too many failed logins; try again later.", headers={"Retry-After": str(exc.retry_after)}
        ) from None
    return Reply(
        json={"data": {"user": user_json(session.user), "token": session.token, "expire": session.expire}},
        headers={"Authorization": f"Bearer {session.token}", "Cache-Control": "no-store"},
    )


@sessions.delete(auth="user", summary="Log out", description="Revokes the presented token.")
async def logout(call: Call) -> None:
    """Sockets opened with the token are disconnected."""
    await accounts_of(call).logout(call.require_principal())
