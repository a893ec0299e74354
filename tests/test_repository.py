"""The repository stands alone: no tracked file points at a path outside it.

A clone has only what is tracked, so a reference to a sibling folder (``../<name>/...``) or to an
absolute path of the machine it was written on is a dead end for every reader.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Built from parts so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        [
            r"\.\./" + "shared",  # a sibling folder of the checkout
            r"(?<![\w.])/" + r"work/",  # the absolute path of a development machine's checkouts
            r"(?<![\w.])/" + r"home/\w+/",
            r"(?<![\w.])/" + r"Users/\w+/",
        ]
    )
)


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def test_no_tracked_file_points_outside_the_repository() -> None:
    found = []
    for path in tracked_files():
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (plots)
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "paths outside the repository:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_is_for() -> None:
    sibling, machine, home = "../" + "shared", "/" + "work", "/" + "home"
    for text in [f"see {sibling}/spec/x.md", f"cd {machine}/main", f"at {home}/alice/x"]:
        assert OUTSIDE.search(text), text
    for text in ["relaygate/contexts/shared.py", "https://example.com/work/x", "./work/x"]:
        assert not OUTSIDE.search(text), text


DOC_PATH = re.compile(r"(?<![\w./-])((?:docs|bench|examples)/[\w./-]+\.(?:md|py|mjs|png))")


def test_paths_named_in_tracked_files_exist() -> None:
    """A file that names a page ``docs/<page>.md`` (or an example, a bench result) names one that is there."""
    missing = []
    for path in tracked_files():
        if not path.is_file() or path.suffix not in {".md", ".py", ".toml", ".yml", ".mjs"}:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for name in DOC_PATH.findall(line):
                if not (ROOT / name.rstrip(".")).exists():
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert not missing, "named but missing:\n" + "\n".join(missing)
