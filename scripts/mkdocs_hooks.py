"""MkDocs hooks: the reference pages that are generated from the code at build time.

Generated, so they cannot drift from what runs:
- ``<!-- generated: settings -->`` in a page becomes the table of every ``RELAYGATE_*`` setting,
  read from ``relaygate.config.Settings`` (a setting without a docstring fails the build);
- ``<!-- generated: app-settings -->`` becomes the table of the reference app's own settings
  (the fields its ``Settings`` subclass adds), read from the app ``relaygate serve`` runs;
- ``<!-- generated: cli -->`` becomes every ``relaygate`` command, read from the typer app;
- ``<!-- generated: metrics -->`` becomes the list of metrics the node's ``/metrics`` serves;
- ``<!-- generated: http-api -->`` becomes the reference app's HTTP API, rendered from the live
  OpenAPI document (the app is built and ``GET /openapi.json`` is asked of it);
- ``reference/api/<package>.md`` is generated for every public package (one with an ``__all__``)
  and listed in the nav under the "Python API" entry; mkdocstrings renders the docstrings.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import re
import tempfile
import typing
from pathlib import Path
from typing import Any

API_SECTION = "Python API"
API_INDEX = "reference/api/index.md"
MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")


class DocsError(Exception):
    """Something the generated pages need is missing from the code."""


# --- public packages and the Python API pages ---------------------------------------------------


def public_packages() -> list[str]:
    """Every ``relaygate`` package whose ``__all__`` exports more than the version string."""
    root = importlib.import_module("relaygate")
    names = ["relaygate"]
    for info in pkgutil.walk_packages(root.__path__, "relaygate."):
        if info.ispkg and ".migrations" not in info.name:
            names.append(info.name)
    public = []
    for name in names:
        exported = getattr(importlib.import_module(name), "__all__", None)
        if exported and set(exported) != {"__version__"}:
            public.append(name)
    return sorted(public)


def api_page(package: str) -> str:
    module = importlib.import_module(package)
    members = [name for name in module.__all__ if name != "__version__"]
    lines = [
        f"# `{package}`",
        "",
        f"::: {package}",
        "    options:",
        "      show_root_heading: false",
        "      show_root_toc_entry: false",
        "      members:",
        *(f"        - {name}" for name in members),
        "",
    ]
    return "\n".join(lines)


def api_page_path(package: str) -> str:
    return f"reference/api/{package}.md"


# --- settings ---------------------------------------------------------------------------------


def _type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{arg}`" for arg in args)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if args and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return " \\| ".join(_type_text(arg) for arg in rest) + " (optional)"
    if origin is list:
        return "comma list"
    return getattr(annotation, "__name__", str(annotation))


def settings_markdown(cls: Any = None, *, skip: Any = None) -> str:
    """The table of ``cls``'s settings (default: the framework's), leaving out the fields of ``skip``."""
    from pydantic_core import PydanticUndefined

    from relaygate.config import Settings

    cls = cls or Settings
    inherited = set(skip.model_fields) if skip is not None else set()
    prefix = cls.model_config.get("env_prefix", "")
    rows = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in cls.model_fields.items():
        if name in inherited:
            continue
        if not field.description:
            raise DocsError(
                f"setting {name!r} has no description: add a docstring under the field in "
                f"{cls.__module__}.{cls.__qualname__}"
            )
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = None if field.default is PydanticUndefined else field.default
        shown = (
            "unset" if default is None else f"`{','.join(default) if isinstance(default, list) else default}`"
        )
        if default == []:
            shown = "empty"
        description = " ".join(field.description.split()).replace("``", "`").replace("|", "\\|")
        env = f"{prefix}{name}".upper()
        rows.append(f"| `{env}` | {_type_text(field.annotation)} | {shown} | {description} |")
    if len(rows) == 2:
        raise DocsError(f"{cls.__module__}.{cls.__qualname__} declares no settings of its own")
    return "\n".join(rows)


def app_settings_markdown() -> str:
    """The reference app's own settings (its :class:`Settings` subclass, without the framework's)."""
    from relaygate.config import Settings
    from relaygate.node.loading import REFERENCE_APP, import_app

    return settings_markdown(import_app(REFERENCE_APP).settings, skip=Settings)


# --- CLI --------------------------------------------------------------------------------------


def cli_markdown() -> str:
    """Every command of the typer app (typer ships its own click: read it by duck typing)."""
    import typer.main

    from relaygate import cli as cli_module

    root = typer.main.get_command(cli_module.cli)
    out: list[str] = []

    def walk(command: Any, path: list[str], parent: Any) -> None:
        ctx = command.context_class(command, info_name=path[-1], parent=parent)
        group = hasattr(command, "list_commands")
        if path[1:]:
            out.extend([f"## `{' '.join(path)}`", ""])
        text = command.help or command.short_help or ""
        if text:
            out.extend([" ".join(text.split()), ""])
        if not group:
            usage = " ".join([*path, *command.collect_usage_pieces(ctx)])
            out.extend(["```text", usage, "```", ""])
        rows = []
        for param in command.get_params(ctx):
            if param.name == "help" or getattr(param, "hidden", False):
                continue
            if param.param_type_name == "argument":
                name = f"`{param.metavar or param.name.upper()}`"
                what = getattr(param, "help", None) or ""
                default = "required" if param.required else ""
            else:
                name = " / ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
                what = param.help or ""
                if param.prompt:
                    default = "prompted"
                elif param.required:
                    default = "required"
                elif param.is_flag:
                    default = "on" if param.default else "off"
                else:
                    default = "" if param.default is None else f"`{param.default}`"
            rows.append(f"| {name} | {_cell(what)} | {default} |")
        if rows:
            out.extend(["| argument / option | meaning | default |", "| --- | --- | --- |", *rows, ""])
        if group:
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], ctx)

    walk(root, ["relaygate"], None)
    if len(out) < 20:
        raise DocsError("the CLI reference found no subcommands: has the typer app changed shape?")
    return "\n".join(out)


# --- HTTP API from the live OpenAPI document ----------------------------------------------------


def reference_app() -> Any:
    """The reference app, built as ``relaygate serve`` would, on a throwaway SQLite database."""
    from relaygate.config import load_settings
    from relaygate.node import create_app

    folder = tempfile.mkdtemp(prefix="relaygate-docs-")
    settings = load_settings(
        env="dev", secret_key="docs-" * 8, database_url=f"sqlite+aiosqlite:///{folder}/docs.db"
    )
    return create_app(settings)


def live_get(path: str) -> str:
    """The body of ``GET path`` answered by the reference app (in-process, no server)."""
    import httpx

    async def fetch() -> str:
        transport = httpx.ASGITransport(app=reference_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            response = await client.get(path)
            response.raise_for_status()
            return response.text

    return asyncio.run(fetch())


def live_openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(live_get("/openapi.json"))
    return document


def metrics_markdown() -> str:
    """Every metric family the node's ``/metrics`` serves, from its Prometheus text."""
    families: dict[str, dict[str, str]] = {}
    for line in live_get("/metrics").splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 4 and parts[0] == "#" and parts[1] in {"HELP", "TYPE"}:
            families.setdefault(parts[2], {})[parts[1]] = parts[3]
    rows = ["| metric | type | meaning |", "| --- | --- | --- |"]
    for name, family in families.items():
        if name.endswith("_created"):  # the client library's creation timestamps
            continue
        rows.append(f"| `{name}` | {family.get('TYPE', '')} | {_cell(family.get('HELP', ''))} |")
    return "\n".join(rows)


def _anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _schema_type(schema: dict[str, Any], depth: int = 0) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [_schema_type(part, depth) for part in schema[key]]
            return " or ".join(dict.fromkeys(parts))
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}), depth)}"
    if kind == "object" and "properties" in schema:
        if depth > 0 or len(schema["properties"]) > 3:
            return "object (" + ", ".join(f"`{name}`" for name in schema["properties"]) + ")"
        fields = ", ".join(
            f"`{name}`: {_schema_type(spec, depth + 1)}" for name, spec in schema["properties"].items()
        )
        return f"{{{fields}}}"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    text = str(kind or "any")
    if "format" in schema:
        text += f" ({schema['format']})"
    return text


def _constraints(schema: dict[str, Any]) -> str:
    words = {
        "minLength": "min length",
        "maxLength": "max length",
        "minimum": "≥",
        "maximum": "≤",
        "minItems": "min items",
        "maxItems": "max items",
        "pattern": "pattern",
        "default": "default",
    }
    found = []
    for key, word in words.items():
        if key in schema:
            value = schema[key]
            found.append(f"{word} `{json.dumps(value) if key == 'default' else value}`")
    for key in ("anyOf", "oneOf"):
        for part in schema.get(key, []):
            if part.get("type") != "null" and _constraints(part):
                found.append(_constraints(part))
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        inner = _constraints(schema["items"])
        if inner:
            found.append(f"items: {inner}")
    return ", ".join(found)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def openapi_markdown(document: dict[str, Any]) -> str:
    out: list[str] = []
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method.startswith("x-") or not isinstance(operation, dict):
                continue
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((path, method, operation))
    for tag, operations in by_tag.items():
        out.extend([f"## {tag.capitalize()}", ""])
        for path, method, operation in operations:
            out.extend([f"### `{method.upper()} {path}`", ""])
            if operation.get("summary"):
                out.extend([_cell(operation["summary"]) + ".", ""])
            if operation.get("description"):
                out.extend([operation["description"], ""])
            auth = "bearer token" if operation.get("security") else "none"
            out.extend([f"**Authentication:** {auth}", ""])
            parameters = operation.get("parameters", [])
            if parameters:
                out.extend(
                    ["| parameter | in | type | required | notes |", "| --- | --- | --- | --- | --- |"]
                )
                for parameter in parameters:
                    schema = parameter.get("schema", {})
                    notes = _cell(
                        " ".join(filter(None, [parameter.get("description", ""), _constraints(schema)]))
                    )
                    out.append(
                        f"| `{parameter['name']}` | {parameter['in']} | {_schema_type(schema)} | "
                        f"{'yes' if parameter.get('required') else 'no'} | {notes} |"
                    )
                out.append("")
            body = operation.get("requestBody")
            if body:
                kinds = ", ".join(f"`{kind}`" for kind in body.get("content", {}))
                first = next(iter(body.get("content", {}).values()), {})
                out.extend([f"**Request body** ({kinds}): {_schema_type(first.get('schema', {}))}", ""])
            out.extend(["| status | meaning | body | headers |", "| --- | --- | --- | --- |"])
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                bodies = "; ".join(
                    f"`{kind}` {_schema_type(media.get('schema', {}))}" for kind, media in content.items()
                )
                headers = ", ".join(f"`{name}`" for name in response.get("headers", {}))
                out.append(f"| {status} | {_cell(response.get('description', ''))} | {bodies} | {headers} |")
            out.append("")
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        out.extend(["## Schemas", ""])
        for name, schema in schemas.items():
            out.extend([f"### {name} {{#{_anchor(name)}}}", ""])
            if schema.get("description"):
                out.extend([_cell(schema["description"]), ""])
            properties = schema.get("properties")
            if not properties:
                out.extend([f"Type: {_schema_type(schema)}", ""])
                continue
            required = set(schema.get("required", []))
            extra = schema.get("additionalProperties")
            out.extend(["| field | type | required | constraints |", "| --- | --- | --- | --- |"])
            for field, spec in properties.items():
                out.append(
                    f"| `{field}` | {_schema_type(spec)} | {'yes' if field in required else 'no'} | "
                    f"{_cell(_constraints(spec))} |"
                )
            out.append("")
            if extra is False:
                out.extend(["Unknown fields are refused (422).", ""])
    return "\n".join(out)


# --- MkDocs events ----------------------------------------------------------------------------

GENERATORS = {
    "settings": settings_markdown,
    "app-settings": app_settings_markdown,
    "cli": cli_markdown,
    "http-api": lambda: openapi_markdown(live_openapi()),
    "metrics": metrics_markdown,
}


def on_config(config: Any) -> Any:
    """Fill the nav's Python API section with one page per public package."""
    entries = [{package: api_page_path(package)} for package in public_packages()]

    def fill(items: list[Any]) -> bool:
        for item in items:
            if isinstance(item, dict):
                for title, value in item.items():
                    if title == API_SECTION and isinstance(value, list):
                        value[:] = [entry for entry in value if not _is_api_page(entry)] + entries
                        return True
                    if isinstance(value, list) and fill(value):
                        return True
        return False

    if not fill(config["nav"] or []):
        raise DocsError(f"mkdocs.yml nav has no {API_SECTION!r} section")
    return config


def _is_api_page(entry: Any) -> bool:
    return isinstance(entry, dict) and any(
        str(value).startswith("reference/api/relaygate") for value in entry.values()
    )


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for package in public_packages():
        files.append(File.generated(config, api_page_path(package), content=api_page(package)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        generator = GENERATORS.get(match.group(1))
        if generator is None:
            raise DocsError(f"{page.file.src_path}: unknown generated block {match.group(1)!r}")
        return generator()

    return MARKER.sub(replace, markdown)


def docs_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "docs"


SPHINX_ROLE = re.compile(r":(?:class|meth|func|data|mod|attr|exc|obj):(?=<code>)")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Docstrings use Sphinx roles (``:class:`X```); on the page they are just code."""
    return SPHINX_ROLE.sub("", html)
