"""Argument type specs of gateway functions and the validation of request arguments.

Pure and strict: values are checked, never coerced (``"5"`` is not a ``num``). Validation
returns the values the function receives (defaults filled in, ``datetime`` parsed to an aware
:class:`datetime.datetime`) or a ``{field: message}`` dict of everything that was wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

TYPES: Final = frozenset(
    {
        "string",
        "num",
        "integer",
        "boolean",
        "uuid",
        "datetime",
        "naive_datetime",
        "list",
        "list_string",
        "list_num",
        "list_uuid",
        "list_map",
        "map",
        "any",
    }
)
LIST_TYPES: Final = frozenset({"list", "list_string", "list_num", "list_uuid", "list_map"})
DEFAULT_MAX_BYTES: Final = 3000
DEFAULT_MAX_ITEMS: Final = 1000
DEFAULT_MAX_ITEM_BYTES: Final = 3000

# Which options each type understands besides allow_nil and default.
_OPTIONS: Final[dict[str, frozenset[str]]] = {
    "string": frozenset({"max_bytes"}),
    "num": frozenset({"min", "max"}),
    "integer": frozenset({"min", "max"}),
    "boolean": frozenset(),
    "uuid": frozenset(),
    "datetime": frozenset(),
    "naive_datetime": frozenset(),
    "list": frozenset({"max_items", "max_item_bytes"}),
    "list_string": frozenset({"max_items", "max_item_bytes"}),
    "list_num": frozenset({"max_items"}),
    "list_uuid": frozenset({"max_items"}),
    "list_map": frozenset({"max_items", "required", "accept"}),
    "map": frozenset({"max_items", "required", "accept"}),
    "any": frozenset(),
}
_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ISO_DATETIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(?P<offset>Z|z|[+-]\d{2}:?\d{2})?$"
)
_MISSING: Final = object()
_RESERVED_NAMES: Final = frozenset({"ctx"})


class SpecError(ValueError):
    """An argument type spec is malformed (a programming error of the function's author)."""


class ArgError(ValueError):
    """One value does not match its spec; the message is shown to the client."""


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One argument's type and options; build it with :func:`parse_spec`."""

    type: str
    allow_nil: bool = False
    default: Any = field(default=_MISSING)
    max_bytes: int = DEFAULT_MAX_BYTES
    max_items: int = DEFAULT_MAX_ITEMS
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES
    required: tuple[str, ...] = ()
    accept: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

    def to_wire(self) -> dict[str, Any]:
        """The JSON form of this spec (only the options that differ from the defaults)."""
        out: dict[str, Any] = {"type": self.type}
        if self.allow_nil:
            out["allow_nil"] = True
        if self.has_default:
            out["default"] = _jsonable(self.default)
        for name, default in (
            ("max_bytes", DEFAULT_MAX_BYTES),
            ("max_items", DEFAULT_MAX_ITEMS),
            ("max_item_bytes", DEFAULT_MAX_ITEM_BYTES),
        ):
            if getattr(self, name) != default:
                out[name] = getattr(self, name)
        if self.required:
            out["required"] = list(self.required)
        if self.accept is not None:
            out["accept"] = list(self.accept)
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{name} must be a positive integer")
    return value


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{name} must be a finite number")
    return value


def _names(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{name} must be a list of strings")
    return tuple(value)


def parse_spec(raw: object) -> ArgSpec:
    """Build an :class:`ArgSpec` from a bare type name or an options dict; raise :class:`SpecError`."""
    if isinstance(raw, ArgSpec):
        return raw
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        raise SpecError("an argument spec is a type name or an object with a 'type'")
    type_name = raw.get("type")
    if type_name not in TYPES:
        raise SpecError(f"unknown argument type {type_name!r}")
    allowed = _OPTIONS[type_name] | {"type", "allow_nil", "default"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SpecError(f"option(s) {', '.join(map(str, unknown))} do not apply to type {type_name}")
    allow_nil = raw.get("allow_nil", False)
    if not isinstance(allow_nil, bool):
        raise SpecError("allow_nil must be a boolean")
    options: dict[str, Any] = {"allow_nil": allow_nil}
    for key in ("max_bytes", "max_items", "max_item_bytes"):
        if key in raw:
            options[key] = _positive_int(key, raw[key])
    for key in ("min", "max"):
        if key in raw:
            options[key] = _number(key, raw[key])
    if options.get("min") is not None and options.get("max") is not None and options["min"] > options["max"]:
        raise SpecError("min must not exceed max")
    if "required" in raw:
        options["required"] = _names("required", raw["required"])
    if "accept" in raw:
        options["accept"] = _names("accept", raw["accept"])
    spec = ArgSpec(type_name, **options)
    if "default" in raw:
        default = raw["default"]
        if default is None and not allow_nil:
            raise SpecError("a null default needs allow_nil")
        try:
            value = None if default is None else check_value(spec, default)
        except ArgError as exc:
            raise SpecError(f"default does not match the type: {exc}") from None
        spec = ArgSpec(type_name, default=value, **options)
    return spec


def parse_specs(raw: object) -> dict[str, ArgSpec]:
    """Parse a ``{name: spec}`` mapping; argument names are identifiers and ``ctx`` is reserved."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError("arg types must be an object of name -> spec")
    specs: dict[str, ArgSpec] = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not name.isidentifier() or name in _RESERVED_NAMES:
            raise SpecError(f"invalid argument name {name!r}")
        try:
            specs[name] = parse_spec(spec)
        except SpecError as exc:
            raise SpecError(f"argument {name}: {exc}") from None
    return specs


def _utf8_len(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ArgError("must be valid UTF-8 text") from None


def _check_string(value: object, max_bytes: int) -> str:
    if not isinstance(value, str):
        raise ArgError("must be a string")
    if _utf8_len(value) > max_bytes:
        raise ArgError(f"must be at most {max_bytes} bytes")
    return value


def _check_num(value: object, spec: ArgSpec, *, integer: bool) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise ArgError("must be an integer" if integer else "must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ArgError("must be a finite number")
    if spec.min is not None and value < spec.min:
        raise ArgError(f"must be at least {spec.min}")
    if spec.max is not None and value > spec.max:
        raise ArgError(f"must be at most {spec.max}")
    return value


def _check_uuid(value: object) -> str:
    if not isinstance(value, str) or _UUID.match(value) is None:
        raise ArgError("must be a UUID")
    return value


def _check_datetime(value: object, *, aware: bool) -> datetime:
    if isinstance(value, datetime):  # a local caller may pass one directly
        if (value.tzinfo is not None) != aware:
            raise ArgError("must have a UTC offset" if aware else "must not have a UTC offset")
        return value
    if not isinstance(value, str) or (match := _ISO_DATETIME.match(value)) is None:
        raise ArgError("must be an ISO 8601 date-time" + (" with an offset" if aware else ""))
    has_offset = match.group("offset") is not None
    if has_offset != aware:
        raise ArgError("must have a UTC offset" if aware else "must not have a UTC offset")
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ArgError("must be a valid date-time") from None


def _check_map(value: object, spec: ArgSpec) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ArgError("must be an object")
    if len(value) > spec.max_items:
        raise ArgError(f"must have at most {spec.max_items} keys")
    missing = [k for k in spec.required if k not in value]
    if missing:
        raise ArgError(f"missing key(s): {', '.join(missing)}")
    if spec.accept is not None:
        allowed = set(spec.accept) | set(spec.required)
        extra = sorted(k for k in value if k not in allowed)
        if extra:
            raise ArgError(f"unexpected key(s): {', '.join(extra)}")
    return value


def _check_list(value: object, spec: ArgSpec) -> list[Any]:
    if not isinstance(value, list):
        raise ArgError("must be a list")
    if len(value) > spec.max_items:
        raise ArgError(f"must have at most {spec.max_items} items")
    for index, item in enumerate(value):
        try:
            _check_item(spec, item)
        except ArgError as exc:
            raise ArgError(f"item {index} {exc}") from None
    return value


def _check_item(spec: ArgSpec, item: object) -> None:
    kind = spec.type
    if kind == "list":
        if isinstance(item, str):
            _check_string(item, spec.max_item_bytes)
        elif item is not None and not isinstance(item, bool | int | float):
            raise ArgError("must be a scalar (string, number, boolean or null)")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ArgError("must be a finite number")
    elif kind == "list_string":
        _check_string(item, spec.max_item_bytes)
    elif kind == "list_num":
        _check_num(item, ArgSpec("num"), integer=False)
    elif kind == "list_uuid":
        _check_uuid(item)
    else:  # list_map: each item is a map with the list's required/accept keys
        _check_map(item, ArgSpec("map", required=spec.required, accept=spec.accept))


def check_value(spec: ArgSpec, value: object) -> Any:
    """Check one non-null value against ``spec``; return what the function receives."""
    kind = spec.type
    if kind == "string":
        return _check_string(value, spec.max_bytes)
    if kind in ("num", "integer"):
        return _check_num(value, spec, integer=kind == "integer")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ArgError("must be a boolean")
        return value
    if kind == "uuid":
        return _check_uuid(value)
    if kind in ("datetime", "naive_datetime"):
        return _check_datetime(value, aware=kind == "datetime")
    if kind in LIST_TYPES:
        return _check_list(value, spec)
    if kind == "map":
        return _check_map(value, spec)
    return value  # any


def validate_args(specs: Mapping[str, ArgSpec], args: object) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate request ``args`` against ``specs``: ``(values, {})`` or ``({}, errors)``."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return {}, {"args": "must be an object"}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in args:
        if name not in specs:
            errors[str(name)] = "unknown argument"
    for name, spec in specs.items():
        raw = args.get(name, _MISSING)
        if raw is _MISSING:
            if spec.has_default:
                values[name] = spec.default
            elif spec.allow_nil:
                values[name] = None
            else:
                errors[name] = "is required"
            continue
        if raw is None:
            if spec.allow_nil:
                values[name] = None
            else:
                errors[name] = "must not be null"
            continue
        try:
            values[name] = check_value(spec, raw)
        except ArgError as exc:
            errors[name] = str(exc)
    return ({}, errors) if errors else (values, {})


_NO_ERRORS: Final[dict[str, str]] = {}
Validator = Callable[[object], tuple[dict[str, Any], dict[str, str]]]


def _passes_as_is(spec: ArgSpec) -> Callable[[Any], bool] | None:
    """A cheap test that a non-null value passes ``spec`` unchanged, or None for types that
    always take the full check (it may say no to a valid value: the full check decides then)."""
    kind, low, high = spec.type, spec.min, spec.max
    if kind == "any":
        return lambda value: True
    if kind == "boolean":
        return lambda value: type(value) is bool
    if kind == "string":
        limit = spec.max_bytes  # ASCII: one byte per character, always valid UTF-8
        return lambda value: type(value) is str and len(value) <= limit and value.isascii()
    if kind in ("integer", "num"):  # an int passes both (a float takes the full check)
        if low is None and high is None:
            return lambda value: type(value) is int
        lo = -math.inf if low is None else low
        hi = math.inf if high is None else high
        return lambda value: type(value) is int and lo <= value <= hi
    return None


def compile_validator(specs: Mapping[str, ArgSpec]) -> Validator:
    """:func:`validate_args` for one function's ``specs``, built once: arguments that plainly
    match (the common case) are checked with one type test each, anything else by the full
    check, so results and error messages are exactly :func:`validate_args`'."""
    checks = [(name, _passes_as_is(spec)) for name, spec in specs.items()]
    if any(check is None for _, check in checks) or any(spec.has_default for spec in specs.values()):
        return lambda args: validate_args(specs, args)
    fast = [(name, check) for name, check in checks if check is not None]
    count = len(fast)

    def validate(args: object) -> tuple[dict[str, Any], dict[str, str]]:
        if type(args) is dict and len(args) == count:
            values = {}
            for name, check in fast:
                value = args.get(name)
                if value is None or not check(value):
                    break
                values[name] = value
            else:
                return values, _NO_ERRORS
        elif args is None and count == 0:
            return {}, _NO_ERRORS
        return validate_args(specs, args)

    return validate
