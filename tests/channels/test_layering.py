"""The channels package has no import cycles, type-only imports included (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import relaygate.channels

PACKAGE = Path(relaygate.channels.__file__).parent


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("relaygate.channels."):
            names.add(node.module.removeprefix("relaygate.channels.").split(".")[0])
    return names


def test_channels_modules_form_no_cycle() -> None:
    graph = {path.stem: imports_of(path) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle in relaygate.channels: {exc.args[1]}") from None
    # transports come after the session and the endpoint core, and the public Endpoint after them
    assert order.index("core") < order.index("session") < order.index("wire") < order.index("endpoint")
