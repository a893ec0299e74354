"""Names given to generators: identifiers, their spellings, and ``FIELD:TYPE`` columns."""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass

from relaygate.scaffold.files import ScaffoldError

_SNAKE = re.compile(r"[a-z][a-z0-9_]*")
_CAMEL = re.compile(r"[A-Z][A-Za-z0-9]*")
TAKEN = frozenset({"relaygate", "company_api", "tests", "test"})
RESERVED_FIELDS = frozenset({"id", "revision", "inserted_at", "updated_at"})


def snake(value: str, what: str) -> str:
    """``value`` if it is a lowercase Python identifier (``order_items``)."""
    if not _SNAKE.fullmatch(value) or keyword.iskeyword(value) or value.endswith("_"):
        raise ScaffoldError(f"{what} {value!r} is not a lowercase identifier such as order_items")
    return value


def module_name(value: str) -> str:
    """A name for the project's package: an identifier that shadows nothing importable."""
    name = snake(value, "module name")
    if name in TAKEN or name in sys.stdlib_module_names:
        raise ScaffoldError(f"module name {name!r} would shadow another package; pick another with --module")
    return name


def camel(value: str, what: str) -> str:
    """``OrderItem`` for ``OrderItem`` or ``order_item``."""
    if _CAMEL.fullmatch(value):
        return value
    return "".join(part.capitalize() for part in snake(value, what).split("_"))


def snake_of(camel_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel_name).lower()


@dataclass(frozen=True, slots=True)
class FieldType:
    column: str
    """The SQLAlchemy column type in a model."""
    python: str
    input: str
    """The type of the field in the request body model."""
    samples: tuple[object, object]


TYPES: dict[str, FieldType] = {
    "str": FieldType("String(200)", "str", "Annotated[str, Field(min_length=1, max_length=200)]", ("a", "b")),
    "text": FieldType("Text()", "str", "Annotated[str, Field(max_length=100_000)]", ("some text", "more")),
    "int": FieldType("Integer()", "int", "int", (42, 7)),
    "bool": FieldType("Boolean()", "bool", "bool", (True, False)),
    "float": FieldType("Float()", "float", "float", (1.5, 2.25)),
    "datetime": FieldType(
        "UTCDateTime()", "datetime", "IsoDateTime", ("2024-05-01T12:00:00Z", "2025-01-02T03:04:05Z")
    ),
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str

    @property
    def spec(self) -> FieldType:
        return TYPES[self.type]


def columns(specs: list[str]) -> list[Column]:
    """``["name:str", "price:float"]`` → columns; a bad or repeated one is a :class:`ScaffoldError`."""
    if not specs:
        raise ScaffoldError("give at least one FIELD:TYPE, e.g. name:str")
    found: list[Column] = []
    for spec in specs:
        name, sep, kind = spec.partition(":")
        if not sep:
            raise ScaffoldError(f"{spec!r} is not FIELD:TYPE, e.g. name:str")
        snake(name, "field")
        if name in RESERVED_FIELDS:
            raise ScaffoldError(f"field {name!r} is added by the generator; pick another name")
        if kind not in TYPES:
            raise ScaffoldError(f"field {name!r}: unknown type {kind!r}; use one of {', '.join(TYPES)}")
        if any(column.name == name for column in found):
            raise ScaffoldError(f"field {name!r} is given twice")
        found.append(Column(name, kind))
    return found
