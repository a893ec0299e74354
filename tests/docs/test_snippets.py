"""Every Python and shell snippet of the documentation runs (one subprocess per page).

The docs name the usual ports and URLs (``127.0.0.1:4000``, ``--port 4000``, ``redis://127.0.0.1:6379/0``, ...);
the run rewrites them to free ports and to the suite's throwaway Redis and PostgreSQL servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.snippets import DOCS, ROOT, blocks
from tests.servers import free_port

PAGES = sorted(path for path in DOCS.rglob("*.md") if blocks(path))
DOC_REDIS = "redis://127.0.0.1:6379/0"
DOC_POSTGRES = "postgresql+asyncpg://relaygate:relaygate@127.0.0.1:5432/relaygate"


@pytest.mark.timeout(300)  # a page is a whole session of commands (a new project runs its tests)
@pytest.mark.parametrize("page", PAGES, ids=[str(path.relative_to(DOCS)) for path in PAGES])
def test_page_snippets_run(page: Path, request: pytest.FixtureRequest) -> None:
    text = page.read_text(encoding="utf-8")
    rewrite: dict[str, str] = {}
    for port in (4000, 4001, 4002):
        new = free_port()
        rewrite |= {f"127.0.0.1:{port}": f"127.0.0.1:{new}", f"--port {port}": f"--port {new}"}
    if DOC_REDIS in text:
        rewrite[DOC_REDIS] = request.getfixturevalue("redis_url")
    if DOC_POSTGRES in text:
        server = request.getfixturevalue("postgres_server")
        rewrite[DOC_POSTGRES] = server.create_database(f"docs_{free_port()}")
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELAYGATE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DOCS_REWRITE"] = json.dumps(rewrite)
    result = subprocess.run(
        [sys.executable, "-m", "tests.docs.snippets", str(page)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]


def test_a_skip_needs_a_reason(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- test: skip -->\n```sh\nfalse\n```\n")
    env = {**os.environ, "DOCS_REWRITE": "{}"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.docs.snippets", str(page)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "needs a reason" in result.stderr


def test_a_failing_snippet_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\ntext\n\n```sh\ntest 1 = 2\n```\n")
    assert [block.language for block in blocks(page)] == ["python", "sh"]
    result = subprocess.run(
        [sys.executable, "-m", "tests.docs.snippets", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "page.md:7: shell block exited with 1" in result.stderr
