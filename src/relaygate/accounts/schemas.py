"""Input rules of the accounts context as strict pydantic models (no coercion, no unknown fields).

The HTTP routers use these models as request bodies and the CLI validates with them too, so a
rule lives in one place.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from relaygate.accounts.principal import Account

PASSWORD_MIN, PASSWORD_MAX = 12, 128


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise PydanticCustomError("email", "is not a valid email address") from None


Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Email = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "minLength": 1, "maxLength": 200}),
]
Hidden = Field(repr=False)
"""Kept out of ``repr``/``str``, so a model that reaches a log line never shows a password."""
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
CurrentPassword = Annotated[str, StringConstraints(max_length=PASSWORD_MAX)]
Role = Literal["user", "admin"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NewUser(Strict):
    name: Text
    subname: Text
    email: Email
    job: Text
    password: Annotated[Password | None, Hidden] = None

    def new_user(self) -> NewUser:
        return self


class QuickSignUp(Strict):
    """Sign-up with an email and a password, the name optional (other profile fields get defaults)."""

    email: Email
    password: Annotated[Password, Hidden]
    name: Text | None = None

    def new_user(self) -> NewUser:
        return NewUser(
            name=self.name or self.email.partition("@")[0],
            subname="-",
            email=self.email,
            job="Member",
            password=self.password,
        )


class UserChanges(Strict):
    """A merge patch of a user; a field left out is unchanged, ``null`` is refused."""

    name: Text | None = None
    subname: Text | None = None
    email: Email | None = None
    job: Text | None = None
    password: Annotated[Password | None, Hidden] = None
    current_password: Annotated[CurrentPassword | None, Hidden] = None
    role: Role | None = None

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise PydanticCustomError("null", "may not be null")
        return value


class UserPatch(Strict):
    """A user with a JSON merge patch (RFC 7396) applied: the whole editable document, so a patch that
    removes a required field (``{"name": null}``) fails here. :meth:`changes` keeps what differs."""

    name: Text
    subname: Text
    email: Email
    job: Text
    role: Role
    password: Annotated[Password | None, Hidden] = None
    current_password: Annotated[CurrentPassword | None, Hidden] = None

    def changes(self, current: Account) -> UserChanges:
        """The fields that differ from ``current`` (unchanged ones, ``role`` included, are not changes)."""
        given: dict[str, str] = {
            name: getattr(self, name) for name in _PROFILE if getattr(self, name) != getattr(current, name)
        }
        for name in ("password", "current_password"):
            value = getattr(self, name)
            if value is not None:
                given[name] = value
        return UserChanges.model_validate(given)


_PROFILE = ("name", "subname", "email", "job", "role")


class Credentials(Strict):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX), Hidden]


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """``{"field": ["message", ...]}`` from a pydantic error (the body itself is ``"body"``)."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False, include_input=False):
        location: tuple[Any, ...] = tuple(error["loc"])
        field = ".".join(str(part) for part in location) or "body"
        message = "is not allowed" if error["type"] == "extra_forbidden" else error["msg"]
        errors.setdefault(field, []).append(message)
    return errors
