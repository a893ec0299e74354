"""Summarise a ``py-spy record --format raw`` file: the hottest functions, self and inclusive."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
SITE = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def _name(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    file = SITE.sub("", match["file"])
    file = file.split("/src/", 1)[-1] if "/src/" in file else file
    return f"{match['func']} ({file})"


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    """``{"samples", "self": [(function, pct)], "inclusive": [(function, pct)]}`` from collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        # Frames on (nearly) every busy stack are the event loop and the entry point: not informative.
        floor = 0.8 * max(inclusive.values())
        ranked = [(name, round(100 * n / total, 1)) for name, n in counter.most_common() if n < floor]
        return ranked[:top]

    if not total:
        return {"samples": 0, "self": [], "inclusive": []}
    return {"samples": total, "self": pct(own), "inclusive": pct(inclusive)}
