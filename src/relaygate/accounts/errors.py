"""Failures of the accounts context; the HTTP layer maps each to one status."""

from __future__ import annotations


class AccountsError(Exception):
    """Base of every accounts failure."""


class InvalidInput(AccountsError):
    """Field errors (422), e.g. ``{"email": ["has already been taken"]}``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid input: " + ", ".join(sorted(errors)))
        self.errors = errors


class InvalidCredentials(AccountsError):
    """Unknown email or wrong password: deliberately indistinguishable (401)."""


class LoginThrottled(AccountsError):
    """Too many failed logins for this email or client address (429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins, retry in {retry_after}s")
        self.retry_after = retry_after


class UserNotFound(AccountsError):
    """No such user (404)."""


class NotAllowed(AccountsError):
    """Authenticated but not allowed to do this (403)."""
