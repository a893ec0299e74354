"""Values that carry a password or a token never show in their repr (and so never in a log line)."""

from __future__ import annotations

from datetime import UTC, datetime

from relaygate.accounts import Account, Credentials, NewUser, Session, UserChanges

SECRET = "correct-horse-battery"


def test_input_models_hide_passwords() -> None:
    values = [
        Credentials(email="a@example.com", password=SECRET),
        NewUser(name="A", subname="B", email="a@example.com", job="dev", password=SECRET),
        UserChanges(password=SECRET, current_password=SECRET),
    ]
    for value in values:
        assert SECRET not in repr(value)
        assert SECRET not in str(value)
    assert "a@example.com" in repr(values[0])  # the rest is still shown


def test_session_hides_its_token() -> None:
    now = datetime.now(UTC)
    account = Account(1, "A", "B", "a@example.com", "dev", "user", now, now)
    session = Session(account, "eyJ.secret.token", 0)
    assert "eyJ.secret.token" not in repr(session)
    assert session.token == "eyJ.secret.token"
