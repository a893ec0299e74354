"""The reference app is built like any app: it imports only the framework's public names.

Every ``relaygate`` import in ``company_api`` must name a module without a private part that
declares ``__all__``, and only names listed there (ARCHITECTURE.md, the framework/app line).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import company_api

ROOT = Path(company_api.__file__).parent


def framework_imports(source: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) of each import of a ``relaygate`` module in ``source``."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "relaygate" or node.module.startswith("relaygate."):
                found.extend((node.lineno, node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, alias.name, None)
                for alias in node.names
                if alias.name == "relaygate" or alias.name.startswith("relaygate.")
            )
    return found


def violations(source: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for line, module_name, name in framework_imports(source):
        where = f"{source.relative_to(root)}:{line}: {module_name}"
        if any(part.startswith("_") for part in module_name.split(".")):
            problems.append(f"{where} is private")
            continue
        module = importlib.import_module(module_name)
        public = getattr(module, "__all__", None)
        if public is None:
            problems.append(f"{where} has no __all__ (not a public module)")
        elif name is not None and name not in public:
            problems.append(f"{where}.{name} is not in its __all__")
    return problems


def test_the_reference_app_imports_only_public_framework_names() -> None:
    sources = sorted(ROOT.rglob("*.py"))
    assert len(sources) > 20
    problems = [problem for source in sources for problem in violations(source)]
    assert problems == []


def test_the_check_catches_a_private_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from relaygate.web.resources import Call\nfrom relaygate.db import engine\nimport relaygate.db.base\n"
    )
    problems = violations(bad, tmp_path)
    assert [problem.split(": ", 1)[1] for problem in problems] == [
        "relaygate.web.resources has no __all__ (not a public module)",
        "relaygate.db.engine is not in its __all__",
        "relaygate.db.base has no __all__ (not a public module)",
    ]
