"""``relaygate new``: a runnable project; and finding the project a generator runs in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relaygate.node.loading import AppNotFound, app_target
from relaygate.scaffold.files import Changes, ScaffoldError, template, template_names
from relaygate.scaffold.names import module_name

_RENAMED = {"gitignore": ".gitignore"}


def new_project(path: Path, module: str | None = None) -> list[str]:
    """Create the project in ``path`` (which must be missing or empty); the lines to show."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ScaffoldError(f"{path} exists and is not empty; nothing was written")
    name = module_name(module if module is not None else path.resolve().name.replace("-", "_"))
    changes = Changes(path)
    for relative in template_names("project"):
        target = _RENAMED.get(relative, relative.replace("__module__", name))
        changes.create(target, template(f"project/{relative}", module=name))
    path.mkdir(parents=True, exist_ok=True)
    return changes.apply()


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    module: str
    target: str
    """``module.app:app``, the app named in ``pyproject.toml``."""

    @property
    def package(self) -> Path:
        return self.root / self.module


def find_project(cwd: Path) -> Project:
    """The project in ``cwd``: its ``pyproject.toml`` names an app in a package of this folder."""
    try:
        target = app_target(cwd)
    except AppNotFound as exc:
        raise ScaffoldError(str(exc)) from None
    if target is None:
        raise ScaffoldError(
            "not in a Relaygate project: ./pyproject.toml has no [tool.relaygate] app "
            "(create one with `relaygate new PATH`)"
        )
    module = target.partition(":")[0].partition(".")[0]
    if not (cwd / module / "__init__.py").is_file():
        raise ScaffoldError(f"[tool.relaygate] app is {target!r} but there is no package ./{module}")
    return Project(cwd, module, target)
