"""vsn selection, authToken subprotocol parsing, origin checks and topic routing."""

from __future__ import annotations

import pytest

import relaygate.protocol as protocol
from relaygate.protocol import V1, V2, OriginCheck, Router, parse_subprotocols, serializer_for


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, V1),
        ({"vsn": "1.0.0"}, V1),
        ({"vsn": "1.0.7"}, V1),
        ({"vsn": "2.0.0"}, V2),
        ({"vsn": "2.0.3+build"}, V2),
        ({"vsn": "3.0.0"}, None),
        ({"vsn": "2.1.0"}, None),
        ({"vsn": "abc"}, None),
        ({"vsn": "2.0"}, None),
        ({"vsn": "2.0.0-rc.1"}, None),
        ({"vsn[a]": "1"}, None),
    ],
)
def test_serializer_for_vsn(params: dict[str, str], expected: object) -> None:
    assert serializer_for(params) is expected


def test_auth_token_subprotocol_scenario_6() -> None:
    parsed = parse_subprotocols(["phoenix", "base64url.bearer.phx.c2VjcmV0"])
    assert (parsed.accept, parsed.auth_token, parsed.valid) == ("phoenix", "secret", True)
    # padding optional, the url-safe alphabet is tolerated too
    assert parse_subprotocols(["base64url.bearer.phx.Pz8_"]).auth_token == "???"
    assert parse_subprotocols(["base64url.bearer.phx.Pz8/"]).auth_token == "???"


def test_subprotocols_without_token_or_phoenix() -> None:
    assert parse_subprotocols([]) == protocol.Subprotocols(None, None, True)
    assert parse_subprotocols(["other"]).accept is None
    assert not parse_subprotocols(["phoenix", "base64url.bearer.phx.A"]).valid
    assert not parse_subprotocols(["phoenix", "base64url.bearer.phx.__8"]).valid


def test_origin_any() -> None:
    for allowed in (None, ["*"], False):
        assert OriginCheck(allowed).allows("http://evil.com")


def test_origin_missing_header_is_allowed_scenario_5() -> None:
    assert OriginCheck(["https://example.com"]).allows(None)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://example.com", True),
        ("http://example.com", False),
        ("http://evil.com", False),
        ("https://another.com:888", True),
        ("http://another.com:888", True),
        ("http://another.com:889", False),
        ("https://other.com", True),
        ("https://a.b.other.com", True),
        ("https://notother.com", False),
        ("http://[bad", False),
    ],
)
def test_origin_allow_list(origin: str, allowed: bool) -> None:
    check = OriginCheck(["https://example.com", "//another.com:888", "//*.other.com"])
    assert check.allows(origin) is allowed


def test_origin_same_host() -> None:
    check = OriginCheck(True)
    assert check.allows("https://app.io", "app.io:4000")
    assert not check.allows("https://evil.io", "app.io")
    assert not check.allows("https://app.io", None)


def test_router_patterns() -> None:
    router: Router[int] = Router()
    router.add("room:lobby", 1)
    router.add("room:*", 2)
    router.add("*", 3)
    assert router.match("room:lobby") == 1
    assert router.match("room:x") == 2
    assert router.match("other") == 3
    assert router.match("phoenix") is None
    for bad in ("", "a*b"):
        with pytest.raises(ValueError):
            router.add(bad, 0)


def test_public_names() -> None:
    assert sorted(protocol.__all__) == sorted(set(protocol.__all__))
    for name in protocol.__all__:
        assert hasattr(protocol, name), name
