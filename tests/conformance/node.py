"""Run tests/conformance/driver.mjs (the official phoenix.js client under Node) from pytest."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("driver.mjs")

Observation = dict[str, Any]


def node_available() -> str | None:
    """Why the harness cannot run here (no node, or `npm ci` not run), else None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (ROOT / "node_modules" / "phoenix").is_dir() or not (ROOT / "node_modules" / "ws").is_dir():
        return "run `npm ci` at the repository root to install phoenix and ws"
    return None


async def run_driver(
    url: str, steps: list[dict[str, Any]], socket: dict[str, Any] | None = None, timeout: float = 30.0
) -> list[Observation]:
    """Run one scenario and return the driver's observations (fails the test on a driver error)."""
    reason = node_available()
    if reason:
        pytest.skip(reason)
    scenario = {"url": url, "socket": socket or {}, "steps": steps, "deadline_ms": int(timeout * 1000)}
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(DRIVER),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(json.dumps(scenario).encode()), timeout + 5)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("the phoenix.js driver did not finish")
    observations = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    if proc.returncode != 0 or not observations or observations[-1]["type"] != "done":
        pytest.fail(f"driver exit {proc.returncode}: {stderr.decode()[-2000:]}\n{observations[-5:]}")
    unmet = [o for o in observations if o["type"] in ("until_timeout", "bad_step")]
    if unmet:
        pytest.fail(f"scenario step not satisfied: {unmet}\nlast observations: {observations[-40:]}")
    return observations


def select(observations: list[Observation], **fields: Any) -> list[Observation]:
    """Observations whose fields equal all of `fields`."""
    return [o for o in observations if all(o.get(k) == v for k, v in fields.items())]


def sent(observations: list[Observation], **fields: Any) -> list[Observation]:
    return select(observations, type="sent", **fields)


def frames(observations: list[Observation], **fields: Any) -> list[Observation]:
    return select(observations, type="frame", **fields)
