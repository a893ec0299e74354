"""Argument specs and validation: every type and option, property-based where it fits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.protocol.gateway.argtypes import (
    SpecError,
    compile_validator,
    parse_spec,
    parse_specs,
    validate_args,
)

scalars = st.one_of(
    st.text(max_size=20), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans()
)
json_values = st.recursive(
    st.none() | scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
)


def check(spec: object, value: object) -> tuple[dict, dict]:
    return validate_args(parse_specs({"a": spec}), {"a": value})


@given(st.text())
def test_string_accepts_text_within_bytes(text: str) -> None:
    values, errors = check({"type": "string", "max_bytes": 100_000}, text)
    assert values == {"a": text} and not errors


@given(st.text(min_size=1))
def test_string_limit_counts_utf8_bytes(text: str) -> None:
    size = len(text.encode())
    assert check({"type": "string", "max_bytes": size}, text)[0] == {"a": text}
    if size > 1:
        assert "a" in check({"type": "string", "max_bytes": size - 1}, text)[1]


def test_string_default_limit_is_3000_bytes() -> None:
    assert check("string", "é" * 1500)[0]
    assert check("string", "é" * 1501)[1] == {"a": "must be at most 3000 bytes"}


@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_num_accepts_numbers(value: float) -> None:
    assert check("num", value)[0] == {"a": value}


@given(st.one_of(st.booleans(), st.text(), st.none(), st.lists(st.integers(), max_size=2)))
def test_num_never_coerces(value: object) -> None:
    values, errors = check("num", value)
    assert not values and "a" in errors


@given(st.integers(), st.integers(), st.integers())
def test_integer_min_max(value: int, low: int, high: int) -> None:
    low, high = min(low, high), max(low, high)
    values, _errors = check({"type": "integer", "min": low, "max": high}, value)
    assert bool(values) == (low <= value <= high)


@given(st.floats(allow_nan=False, allow_infinity=False) | st.booleans() | st.text())
def test_integer_rejects_non_integers(value: object) -> None:
    assert "a" in check("integer", value)[1]


@given(st.booleans())
def test_boolean(value: bool) -> None:
    assert check("boolean", value)[0] == {"a": value}
    assert "a" in check("boolean", int(value))[1]


@given(st.uuids())
def test_uuid(value: uuid.UUID) -> None:
    assert check("uuid", str(value))[0] == {"a": str(value)}
    assert "a" in check("uuid", str(value)[:-1])[1]
    assert "a" in check("uuid", value.int)[1]


@given(
    st.datetimes(
        timezones=st.just(UTC) | st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-600, 600))
    )
)
def test_datetime_is_parsed_to_an_aware_datetime(value: datetime) -> None:
    text = value.isoformat()
    values, errors = check("datetime", text)
    assert not errors and values["a"] == value and values["a"].tzinfo is not None
    assert "a" in check("datetime", value.replace(tzinfo=None).isoformat())[1]


def test_datetime_accepts_z() -> None:
    values, _ = check("datetime", "2024-05-01T10:20:30Z")
    assert values["a"] == datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)
    assert "a" in check("datetime", "2024-13-01T10:20:30Z")[1]
    assert "a" in check("datetime", "yesterday")[1]


@given(st.datetimes())
def test_naive_datetime(value: datetime) -> None:
    values, errors = check("naive_datetime", value.isoformat())
    assert not errors and values["a"] == value and values["a"].tzinfo is None
    assert "a" in check("naive_datetime", value.isoformat() + "+00:00")[1]


@given(st.lists(scalars | st.none(), max_size=30))
def test_list_of_scalars(value: list) -> None:
    assert check("list", value)[0] == {"a": value}


@given(st.lists(st.lists(st.integers(), max_size=2), min_size=1, max_size=3))
def test_list_rejects_nested(value: list) -> None:
    assert "a" in check("list", value)[1]


@given(st.integers(0, 40), st.integers(1, 40))
def test_list_max_items(count: int, limit: int) -> None:
    values, _errors = check({"type": "list_string", "max_items": limit}, ["x"] * count)
    assert bool(values) == (count <= limit)


def test_list_default_limits() -> None:
    assert check("list_num", [1] * 1000)[0]
    assert check("list_num", [1] * 1001)[1]
    assert check({"type": "list_string", "max_item_bytes": 3}, ["abc", "abcd"])[1] == {
        "a": "item 1 must be at most 3 bytes"
    }


@given(
    st.lists(st.text(max_size=10), max_size=10),
    st.lists(st.integers() | st.floats(allow_nan=False, allow_infinity=False), max_size=10),
)
def test_typed_lists(strings: list, numbers: list) -> None:
    assert check("list_string", strings)[0] == {"a": strings}
    assert check("list_num", numbers)[0] == {"a": numbers}
    if strings:
        assert "a" in check("list_num", strings)[1]
    if numbers:
        assert "a" in check("list_string", numbers)[1]


@given(st.lists(st.uuids().map(str), max_size=5))
def test_list_uuid(ids: list) -> None:
    assert check("list_uuid", ids)[0] == {"a": ids}
    assert "a" in check("list_uuid", [*ids, "nope"])[1]


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=6))
def test_map_and_any(value: dict) -> None:
    assert check("map", value)[0] == {"a": value}
    assert check("any", value)[0] == {"a": value}


def test_map_required_accept_and_limits() -> None:
    spec = {"type": "map", "required": ["id"], "accept": ["name"], "max_items": 2}
    assert check(spec, {"id": 1, "name": "x"})[0]
    assert check(spec, {"name": "x"})[1] == {"a": "missing key(s): id"}
    assert check(spec, {"id": 1, "other": 2})[1] == {"a": "unexpected key(s): other"}
    assert "a" in check({"type": "map"}, {str(i): i for i in range(1001)})[1]
    assert check({"type": "list_map", "required": ["id"]}, [{"id": 1}, {"x": 1}])[1] == {
        "a": "item 1 missing key(s): id"
    }
    assert "a" in check("map", [1])[1]


def test_missing_default_allow_nil_and_unknown() -> None:
    specs = parse_specs(
        {"a": {"type": "integer", "default": 7}, "b": {"type": "string", "allow_nil": True}, "c": "boolean"}
    )
    assert validate_args(specs, {"c": True}) == ({"a": 7, "b": None, "c": True}, {})
    assert validate_args(specs, {}) == ({}, {"c": "is required"})
    assert validate_args(specs, {"c": None}) == ({}, {"c": "must not be null"})
    assert validate_args(specs, {"c": True, "zz": 1}) == ({}, {"zz": "unknown argument"})
    assert validate_args(specs, "x") == ({}, {"args": "must be an object"})


def test_datetime_default_is_delivered_parsed() -> None:
    specs = parse_specs({"since": {"type": "datetime", "default": "2024-01-01T00:00:00Z"}})
    assert validate_args(specs, {})[0]["since"] == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad",
    [
        "text",
        {"type": "string", "min": 1},
        {"type": "integer", "max_bytes": 3},
        {"type": "integer", "min": 3, "max": 1},
        {"type": "string", "default": 5},
        {"type": "string", "default": None},
        {"type": "list", "max_items": 0},
        {"type": "map", "required": "id"},
        {"type": "boolean", "allow_nil": "yes"},
        3,
    ],
)
def test_bad_specs_are_rejected(bad: object) -> None:
    with pytest.raises(SpecError):
        parse_spec(bad)


def test_reserved_and_invalid_argument_names() -> None:
    for name in ("ctx", "not-an-identifier", ""):
        with pytest.raises(SpecError):
            parse_specs({name: "string"})


@given(st.sampled_from(["string", "num", "integer", "boolean", "uuid", "map", "list", "any"]))
def test_spec_wire_round_trip(type_name: str) -> None:
    spec = parse_spec({"type": type_name, "allow_nil": True})
    assert parse_spec(spec.to_wire()) == spec


SPECS = parse_specs(
    {
        "s": {"type": "string", "max_bytes": 5},
        "i": {"type": "integer", "min": 0, "max": 9},
        "n": "num",
        "b": "boolean",
        "x": "any",
    }
)
args_of_all_kinds = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "s": st.one_of(st.text(max_size=8), json_values),
            "i": st.one_of(st.integers(-3, 12), json_values),
            "n": st.one_of(st.integers(), st.floats(), st.booleans(), json_values),
            "b": st.one_of(st.booleans(), st.integers(0, 1), json_values),
            "x": json_values,
            "extra": json_values,
        },
    ),
)


@settings(deadline=None)  # no timing in tests: a loaded machine may pause any example
@given(args_of_all_kinds)
def test_a_compiled_validator_answers_exactly_like_validate_args(args: object) -> None:
    assert compile_validator(SPECS)(args) == validate_args(SPECS, args)


def test_compiled_validators_of_types_without_a_shortcut_take_the_full_check() -> None:
    specs = parse_specs({"when": "datetime", "n": {"type": "integer", "default": 3}})
    validate = compile_validator(specs)
    values, errors = validate({"when": "2024-01-01T00:00:00Z"})
    assert values["n"] == 3 and values["when"].tzinfo is not None and not errors
    assert compile_validator({})(None) == ({}, {}) and compile_validator({})({"a": 1})[1] == {
        "a": "unknown argument"
    }
