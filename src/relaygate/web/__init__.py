"""The HTTP layer: the resource layer (the decision flow of the API), problem+json, ETags and
cursors for app routers, and the framework's own routers (accounts, ops, docs, gateway admin)."""

from relaygate.accounts import QuickSignUp
from relaygate.web.conditional import Validators
from relaygate.web.cursors import decode_cursor, encode_cursor
from relaygate.web.fields import IsoDateTime, iso
from relaygate.web.problems import Problem
from relaygate.web.resources import (
    MAX_ID,
    Call,
    Page,
    Reply,
    Representation,
    Resource,
    ResourceGroup,
    content_etag,
)
from relaygate.web.routers import sessions as _sessions
from relaygate.web.routers import users as _users

ACCOUNT_ROUTERS = (_users.group, _users.signup_group(), _sessions.group)
"""``/api/v1/users``, ``/api/v1/me`` and ``/api/v1/sessions``: mount them in ``App(routers=...)``;
signing up takes the full profile (``name``, ``subname``, ``email``, ``job``, ``password?``)."""
QUICK_ACCOUNT_ROUTERS = (_users.group, _users.signup_group(QuickSignUp), _sessions.group)
"""The same routes, signing up with ``{email, password, name?}`` (the other profile fields get defaults)."""

__all__ = [
    "ACCOUNT_ROUTERS",
    "MAX_ID",
    "QUICK_ACCOUNT_ROUTERS",
    "Call",
    "IsoDateTime",
    "Page",
    "Problem",
    "Reply",
    "Representation",
    "Resource",
    "ResourceGroup",
    "Validators",
    "content_etag",
    "decode_cursor",
    "encode_cursor",
    "iso",
]
