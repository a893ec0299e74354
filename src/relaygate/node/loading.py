"""Which app a command serves: ``--app MODULE:ATTR``, else ``[tool.relaygate] app`` in the current
folder's ``pyproject.toml``, else the reference app (``company_api.app:app``)."""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

from relaygate.config import ConfigError
from relaygate.node.app import App

REFERENCE_APP = "company_api.app:app"


class AppNotFound(ConfigError):
    """The app cannot be loaded; the message is one line for the CLI."""


def app_target(cwd: Path | None = None) -> str | None:
    """``[tool.relaygate] app`` of ``cwd``'s ``pyproject.toml``, or None when there is none."""
    pyproject = (cwd or Path.cwd()) / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AppNotFound(f"{pyproject}: {exc}") from None
    target = document.get("tool", {}).get("relaygate", {}).get("app")
    if target is not None and not isinstance(target, str):
        raise AppNotFound(f"{pyproject}: [tool.relaygate] app must be a string such as 'myapp.app:app'")
    return target


def import_app(target: str) -> App:
    """The :class:`App` named by ``package.module:attribute`` (imported from the current folder too)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise AppNotFound(f"{target!r} is not of the form package.module:attribute")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppNotFound(f"cannot import {module_name}: {exc}") from None
    value: object = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise AppNotFound(f"{module_name} has no attribute {attribute}")
        value = getattr(value, part)
    if not isinstance(value, App):
        raise AppNotFound(f"{target} is a {type(value).__name__}, not a relaygate.App")
    return value


def load_app(target: str | None = None, cwd: Path | None = None) -> App:
    """The app to serve: ``target``, else the project's, else the reference app."""
    return import_app(target or app_target(cwd) or REFERENCE_APP)
