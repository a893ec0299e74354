"""Token issue/verify without I/O: signature, algorithm, expiry and claim checks."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from relaygate.accounts.tokens import TokenCodec

KEY = "k" * 64
codec = TokenCodec(KEY, ttl=600)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_issued_token_verifies_with_its_claims() -> None:
    issued = codec.issue(42, 1234, now=1_700_000_000)
    payload = _payload(issued.token)
    assert payload == {
        "sub": "42",
        "iat": 1_700_000_000,
        "exp": 1_700_000_600,
        "jti": issued.claims.jti,
        "uat": 1234,
    }
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    fresh = codec.issue(42, 1234)
    verified = codec.verify(fresh.token)
    assert verified == fresh.claims
    assert verified is not None and verified.user_id == 42 and len(verified.jti) >= 16


def test_each_token_has_its_own_jti() -> None:
    assert codec.issue(1, 0).claims.jti != codec.issue(1, 0).claims.jti


def test_expired_token_is_refused() -> None:
    assert codec.verify(codec.issue(1, 0, now=1_000_000).token) is None


def test_wrong_signature_is_refused() -> None:
    other = TokenCodec("x" * 40, ttl=600).issue(1, 0).token
    assert codec.verify(other) is None


def test_alg_none_is_refused() -> None:
    claims = _payload(codec.issue(1, 0).token)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert codec.verify(unsigned) is None


def test_other_algorithms_with_the_same_key_are_refused() -> None:
    claims = _payload(codec.issue(1, 0).token)
    assert codec.verify(jwt.encode(claims, KEY, algorithm="HS512")) is None
    assert codec.verify(jwt.encode(claims, KEY, algorithm="HS384")) is None


def test_changed_sub_is_refused() -> None:
    header, _payload_part, signature = codec.issue(1, 0).token.split(".")
    claims = _payload(codec.issue(1, 0).token) | {"sub": "2"}
    assert codec.verify(f"{header}.{_b64(claims)}.{signature}") is None


@pytest.mark.parametrize(
    "change",
    [
        {"sub": 1},
        {"sub": "01"},
        {"sub": "abc"},
        {"jti": "short"},
        {"jti": 5},
        {"uat": "1"},
        {"iat": True},
    ],
)
def test_correctly_signed_but_malformed_claims_are_refused(change: dict[str, object]) -> None:
    claims = _payload(codec.issue(1, 0).token) | change
    assert codec.verify(jwt.encode(claims, KEY, algorithm="HS256")) is None


@pytest.mark.parametrize("missing", ["sub", "exp", "iat", "jti", "uat"])
def test_missing_claims_are_refused(missing: str) -> None:
    claims = _payload(codec.issue(1, 0).token)
    del claims[missing]
    assert codec.verify(jwt.encode(claims, KEY, algorithm="HS256")) is None


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "é.é.é", "a" * 5000])
def test_garbage_is_refused(garbage: str) -> None:
    assert codec.verify(garbage) is None


def test_short_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        TokenCodec("short", ttl=60)


def test_issued_tokens_verify_without_pyjwt(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token as issue() writes it is checked by hmac + orjson; PyJWT only sees anything else."""
    issued = TokenCodec(KEY, ttl=600).issue(7, 99)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("PyJWT decode called for an issued token")

    monkeypatch.setattr(jwt, "decode", refuse)
    assert TokenCodec(KEY, ttl=600).verify(issued.token) == issued.claims


def test_tokens_outside_the_issued_form_are_left_to_pyjwt() -> None:
    """Valid JWTs our key signed in another form (padded segments, another header, an extra
    claim) are decided by PyJWT exactly as before."""
    issued = codec.issue(3, 5)
    padded = issued.token + "="  # PyJWT accepts a trailing '=' on the signature segment
    assert TokenCodec(KEY, ttl=600).verify(padded) == issued.claims
    claims = _payload(issued.token)
    other_header = jwt.encode(claims, KEY, algorithm="HS256", headers={"kid": "1"})
    assert TokenCodec(KEY, ttl=600).verify(other_header) == issued.claims
    extra = jwt.encode(claims | {"aud": "someone"}, KEY, algorithm="HS256")
    assert TokenCodec(KEY, ttl=600).verify(extra) is None  # PyJWT: an audience nobody expects


@pytest.mark.parametrize("change", [{"iat": 4_000_000_000, "exp": 4_000_000_600}, {"exp": 1_000}])
def test_issued_form_tokens_outside_their_lifetime_are_refused(change: dict[str, object]) -> None:
    claims = _payload(codec.issue(1, 0).token) | change
    assert TokenCodec(KEY, ttl=600).verify(jwt.encode(claims, KEY, algorithm="HS256")) is None


def test_a_wrong_signature_in_the_issued_form_is_refused() -> None:
    header, payload, signature = codec.issue(1, 0).token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert TokenCodec(KEY, ttl=600).verify(f"{header}.{payload}.{flipped}") is None
    assert TokenCodec(KEY, ttl=600).verify(f"{header}.{payload}.\udcff") is None
