"""``/api/v1/sessions``: log in (issue a token) and log out (revoke it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from relaygate.contexts.accounts import Credentials, InvalidCredentials, LoginThrottled
from relaygate.telemetry.metrics import RATE_LIMIT_REJECTIONS
from relaygate.web.auth import CHALLENGE, AccountsDep, Caller
from relaygate.web.problem_json import Problem
from relaygate.web.responses import JSON
from relaygate.web.routers.users import user_json

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions")
async def login(body: Credentials, request: Request, accounts: AccountsDep) -> JSON:
    """Wrong email and wrong password get the same 401; repeated failures get 429."""
    address = request.client.host if request.client else None
    try:
        session = await accounts.login(body, address)
    except InvalidCredentials:
        raise Problem(401, "Invalid email or password.", headers=CHALLENGE) from None
    except LoginThrottled as exc:
        RATE_LIMIT_REJECTIONS.labels("login").inc()
        raise Problem(
            429, "Too many failed logins; try again later.", headers={"Retry-After": str(exc.retry_after)}
        ) from None
    return JSON(
        {"data": {"user": user_json(session.user), "token": session.token, "expire": session.expire}},
        headers={"Authorization": f"Bearer {session.token}", "Cache-Control": "no-store"},
    )


@router.delete("/sessions", status_code=204)
async def logout(caller: Caller, accounts: AccountsDep) -> Response:
    """Revoke the presented token; sockets opened with it are disconnected."""
    await accounts.logout(caller)
    return Response(status_code=204)
