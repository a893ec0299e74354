"""Runs the Python and shell snippets of one documentation page, in order, as a reader would.

Used by ``tests/docs/test_snippets.py`` (one subprocess per page) and by hand::

    .venv/bin/python -m tests.docs.snippets docs/guides/channels.md

Rules for a page:
- every fenced block whose language is ``python``, ``sh``, ``bash`` or ``console`` runs; a block
  whose only line is ``--8<-- "file"`` runs that file from ``docs/snippets/``;
- Python blocks of a page share one namespace, and a ``test_*`` function a block defines is
  called (a coroutine under ``asyncio.run``); shell blocks share the working directory and the
  variables (each block runs under ``bash -euo pipefail``);
- an HTML comment on the line before the fence changes that: ``<!-- test: skip REASON -->`` (a
  reason is required), ``<!-- test: server CHECK -->`` (a shell block that keeps running: started
  in the background and stopped with SIGTERM when the page ends; ``CHECK`` is a URL polled until
  it answers, or a shell command retried until it succeeds);
- literal strings listed in ``DOCS_REWRITE`` (JSON object in the environment) are replaced before
  a block runs: the suite points the docs' well-known ports and URLs at its own throwaway servers.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
LANGUAGES = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "console": "sh"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>[^\n]*)$")
DIRECTIVE = re.compile(r"^\s*<!--\s*test:\s*(?P<kind>skip|server)\b\s*(?P<arg>.*?)\s*-->\s*$")
INCLUDE = re.compile(r'^--8<--\s+"(?P<name>[^"]+)"\s*$')


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str
    directive: str = ""
    argument: str = ""

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The runnable blocks of a page, with their directives, in page order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        info = match["info"].strip().lstrip("{").lstrip(".")
        language = LANGUAGES.get(re.split(r"[\s}]", info, maxsplit=1)[0] if info else "")
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = [line[indent:] for line in lines[index + 1 : end]]
        if language is not None:
            directive = DIRECTIVE.match(lines[index - 1]) if index > 0 else None
            code = "\n".join(body) + "\n"
            include = INCLUDE.match(code.strip())
            if include is not None:
                code = (SNIPPETS / include["name"]).read_text(encoding="utf-8")
            found.append(
                Block(
                    page,
                    index + 1,
                    language,
                    code,
                    directive["kind"] if directive else "",
                    directive["arg"] if directive else "",
                )
            )
        index = end + 1
    return found


class PageRun:
    """One page's run: a Python namespace, a shell state file and the servers it started."""

    def __init__(self, page: Path, workdir: Path, rewrite: dict[str, str]) -> None:
        self.page = page
        self.workdir = workdir
        self.rewrite = rewrite
        self.namespace: dict[str, object] = {"__name__": "__docs__"}
        self.state = workdir / ".shell-state"
        self.state.write_text(f"cd {shlex.quote(str(workdir))}\n")
        self.servers: list[subprocess.Popen[bytes]] = []
        self.started = time.monotonic()

    def _code(self, block: Block) -> str:
        """The block with the documented ports and URLs replaced, in one pass: a replacement is
        never rewritten again (a free port 40012 must not match the documented ``4001``)."""
        if not self.rewrite:
            return block.code
        pattern = "|".join(re.escape(old) for old in sorted(self.rewrite, key=len, reverse=True))
        return re.sub(f"(?:{pattern})(?![0-9])", lambda m: self.rewrite[m.group(0)], block.code)

    def run(self, block: Block) -> None:
        if block.directive == "skip":
            if not block.argument:
                raise SystemExit(f"{block.where}: 'test: skip' needs a reason")
            print(f"--- {block.where}: skipped ({block.argument})", flush=True)
            return
        print(f"--- {block.where}: {block.language} at {time.monotonic() - self.started:.1f}s", flush=True)
        if block.language == "python":
            self._python(block)
        elif block.directive == "server":
            self._server(block)
        else:
            self._shell(block)

    def _python(self, block: Block) -> None:
        previous = Path.cwd()
        before = set(self.namespace)
        os.chdir(self._shell_cwd())
        try:
            exec(compile(self._code(block), block.where, "exec"), self.namespace)
            for name in sorted(set(self.namespace) - before):
                if name.startswith("test_") and callable(test := self.namespace[name]):
                    self._run_test(block, name, test)
        finally:
            os.chdir(previous)

    def _run_test(self, block: Block, name: str, test: Any) -> None:
        """A ``test_*`` function a block defines runs too (coroutines under ``asyncio.run``)."""
        if inspect.signature(test).parameters:
            raise SystemExit(f"{block.where}: {name} takes arguments; a test in the docs must take none")
        print(f"    {name}", flush=True)
        result = test()
        if inspect.iscoroutine(result):
            asyncio.run(result)

    def _shell_cwd(self) -> Path:
        first = self.state.read_text().splitlines()[0]
        return Path(shlex.split(first)[1])

    def _script(self, block: Block) -> str:
        return (
            f"source {shlex.quote(str(self.state))}\n"
            "set -euo pipefail -a\n"  # -a: a variable set in one block is there in the next
            f"{self._code(block)}\n"
            f'{{ echo "cd $(printf %q "$PWD")"; export -p; }} > {shlex.quote(str(self.state))}\n'
        )

    def _shell(self, block: Block) -> None:
        result = subprocess.run(["bash", "-c", self._script(block)], check=False)
        if result.returncode != 0:
            raise SystemExit(f"{block.where}: shell block exited with {result.returncode}")

    def _server(self, block: Block) -> None:
        """Start a block that keeps running; wait until its URL answers or its shell check passes."""
        ready = self._code(Block(block.page, block.line, "sh", block.argument)).strip()
        script = f"source {shlex.quote(str(self.state))}\nset -euo pipefail\n{self._code(block)}"
        log = (self.workdir / f"server-{block.line}.log").open("wb")
        process = subprocess.Popen(
            ["bash", "-c", script], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.servers.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(
                    f"{block.where}: server exited with {process.returncode}:\n{_tail(log.name)}"
                )
            if self._ready(ready):
                return
            time.sleep(0.2)
        raise SystemExit(f"{block.where}: not ready ({ready}) within 60 s:\n{_tail(log.name)}")

    def _ready(self, check: str) -> bool:
        if check.startswith("http"):
            try:
                with urllib.request.urlopen(check, timeout=2) as response:
                    return bool(response.status < 500)
            except (urllib.error.URLError, OSError):
                return False
        script = f"source {shlex.quote(str(self.state))}\n{check}"
        return subprocess.run(["bash", "-c", script], capture_output=True, check=False).returncode == 0

    def close(self) -> None:
        """SIGTERM every server's process group (a node drains and exits 0); wait until they are gone."""
        for process in reversed(self.servers):
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.servers:
            while time.monotonic() < deadline:
                process.poll()  # reap the shell, else its zombie keeps the group "alive"
                if not _signal_group(process.pid, 0):
                    break
                time.sleep(0.1)
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False once no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _tail(path: str) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-30:])


def run_page(page: Path) -> None:
    rewrite: dict[str, str] = json.loads(os.environ.get("DOCS_REWRITE", "{}"))
    with tempfile.TemporaryDirectory(prefix="relaygate-docs-") as folder:
        run = PageRun(page.resolve(), Path(folder), rewrite)
        try:
            for block in blocks(page.resolve()):
                run.run(block)
        finally:
            run.close()


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        run_page(Path(argument))
