"""The documentation site builds with ``mkdocs build --strict`` and its generated pages follow the code."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per run exactly as CI does (a warning fails it)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env = {key: value for key, value in env.items() if not key.startswith("RELAYGATE_")}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


def test_every_setting_is_in_the_settings_reference(site: Path) -> None:
    from relaygate.config import Settings

    text = page(site, "reference/settings")
    for name in Settings.model_fields:
        assert f"RELAYGATE_{name.upper()}" in text, name


def test_the_reference_apps_own_settings_are_in_the_settings_reference(site: Path) -> None:
    from relaygate.config import Settings
    from relaygate.node.loading import REFERENCE_APP, import_app

    own = set(import_app(REFERENCE_APP).settings.model_fields) - set(Settings.model_fields)
    assert "chat_rate_limit" in own
    text = page(site, "reference/settings")
    for name in own:
        assert f"RELAYGATE_{name.upper()}" in text, name


def test_every_cli_command_is_in_the_cli_reference(site: Path) -> None:
    import typer.main

    from relaygate.cli import cli

    text = page(site, "reference/cli")

    def names(command: Any, path: str) -> list[str]:
        found = [path]
        for name, sub in getattr(command, "commands", {}).items():
            found += names(sub, f"{path} {name}")
        return found

    commands = names(typer.main.get_command(cli), "relaygate")[1:]
    assert {"relaygate serve", "relaygate gateway disable", "relaygate users create"} <= set(commands)
    for name in commands:
        assert f"<code>{name}</code>" in text, name
    assert "<code>--port</code>" in text and "<code>--redis</code>" in text


def test_the_http_reference_has_every_operation_of_the_live_openapi(site: Path) -> None:
    document = hooks().live_openapi()
    text = page(site, "reference/http-api")
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"<code>{method.upper()} {path}</code>" in text, (method, path)


def test_every_public_package_has_an_api_page(site: Path) -> None:
    for package in hooks().public_packages():
        assert (site / "reference" / "api" / package / "index.html").is_file(), package


def test_a_setting_without_a_description_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from relaygate.config import Settings

    module = hooks()
    field = Settings.model_fields["host"]
    monkeypatch.setattr(field, "description", None)
    with pytest.raises(module.DocsError, match="'host' has no description"):
        module.settings_markdown()
