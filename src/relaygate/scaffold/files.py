"""Writing generated files: templates from the package, all-or-nothing changes, ruff formatting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template


class ScaffoldError(Exception):
    """A generator cannot run (bad name, file exists, not in a project); one line for the CLI."""


def template(template_name: str, /, **values: str) -> str:
    """The packaged template ``relaygate/templates/<template_name>.tmpl`` with ``${key}`` replaced."""
    path = resources.files("relaygate").joinpath("templates", f"{template_name}.tmpl")
    text = path.read_text(encoding="utf-8")
    return Template(text).substitute(values)


def template_names(folder: str) -> list[str]:
    """Every template under ``relaygate/templates/<folder>``, as paths relative to it (no suffix)."""
    root = resources.files("relaygate").joinpath("templates", folder)
    names: list[str] = []

    def walk(node: object, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):  # type: ignore[attr-defined]
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".tmpl"):
                names.append(prefix + child.name.removesuffix(".tmpl"))

    walk(root, "")
    return names


@dataclass
class Changes:
    """Files a generator creates or edits; nothing is written until every check passed, and a
    failure while writing puts every file back as it was."""

    root: Path
    created: dict[Path, str] = field(default_factory=dict)
    edited: dict[Path, str] = field(default_factory=dict)
    originals: dict[Path, str] = field(default_factory=dict)

    def create(self, relative: str, text: str) -> None:
        path = self.root / relative
        if path.exists() or path in self.created:
            raise ScaffoldError(f"{relative} exists already; nothing was changed")
        self.created[path] = text

    def edit(self, relative: str, text: str) -> None:
        self.edited[self.root / relative] = text

    def apply(self) -> list[str]:
        """Write everything; the lines to show (``created x``, ``changed y``)."""
        self.originals = {path: path.read_text(encoding="utf-8") for path in self.edited}
        try:
            for path, text in self.created.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            for path, text in self.edited.items():
                path.write_text(text, encoding="utf-8")
        except BaseException:
            self.undo()
            raise
        format_python([path for path in [*self.created, *self.edited] if path.suffix == ".py"], self.root)
        return [f"created {self._show(path)}" for path in self.created] + [
            f"changed {self._show(path)}" for path in self.edited
        ]

    def undo(self) -> None:
        """Remove the created files and put the edited ones back (after :meth:`apply`)."""
        for path in self.created:
            path.unlink(missing_ok=True)
        for path, text in self.originals.items():
            path.write_text(text, encoding="utf-8")

    def _show(self, path: Path) -> str:
        return str(path.relative_to(self.root))


def ruff() -> str | None:
    """The ruff executable next to this Python, else on PATH (the project's dev extra has it)."""
    beside = Path(sys.executable).parent / "ruff"
    return str(beside) if beside.is_file() else shutil.which("ruff")


def format_python(paths: list[Path], root: Path) -> None:
    """Sort imports and format with ruff when it is installed (templates are formatted already;
    this settles what depends on names, such as import order and line wrapping)."""
    executable = ruff()
    if executable is None or not paths:
        return
    files = [str(path) for path in paths]
    for command in (
        ["check", "--no-cache", "--select", "I", "--fix", "--quiet"],
        ["format", "--no-cache", "--quiet"],
    ):
        subprocess.run([executable, *command, *files], cwd=root, check=False, capture_output=True)  # noqa: S603
