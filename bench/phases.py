"""Closed-loop callers measured in timed phases (one phase per operation of a scenario).

Each worker process runs ``callers`` loops that await one operation at a time. At every phase
the workers warm up, record latencies for ``seconds``, then meet the parent at a step named after
the phase; meanwhile the parent samples server, client and machine CPU over the same window.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from bench.scenarios import machine_busy, others_pct, percentiles
from bench.servers import ServerProcess
from bench.workers import Control, WorkerPool

Operation = Callable[[], Awaitable[bool]]
"""One call; True when it succeeded."""


async def run_phases(
    ctl: Control,
    phases: Sequence[str],
    operations: Callable[[str], Sequence[Operation]],
    warmup: float,
    seconds: float,
) -> None:
    """Worker side: for each phase, loop every operation of ``operations(phase)`` for warmup + seconds."""
    for phase in phases:
        await ctl.step(phase, await _phase(operations(phase), warmup, seconds))


async def _phase(operations: Sequence[Operation], warmup: float, seconds: float) -> dict[str, Any]:
    clock = time.monotonic_ns
    start = clock() + int(warmup * 1e9)
    end = start + int(seconds * 1e9)
    latencies = array("q")
    failures = 0
    errors: list[str] = []

    async def loop(operation: Operation) -> None:
        nonlocal failures
        while (sent := clock()) < end:
            try:
                ok = await operation()
            except Exception as exc:
                ok = False
                errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.01)  # a broken connection must not spin
            if not ok:
                failures += 1
            elif sent >= start:
                latencies.append(clock() - sent)

    await asyncio.gather(*(loop(op) for op in operations))
    return {"latencies": latencies.tobytes(), "failures": failures, "errors": errors[:3]}


def measure_phases(
    pool: WorkerPool,
    server: ServerProcess,
    phases: Sequence[str],
    warmup: float,
    seconds: float,
    parts: Callable[[], dict[str, float]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Parent side, called right after the ready step released the workers: per phase, the rate
    (completed calls per second), latency percentiles, failures and CPU per call; with ``parts``
    (CPU seconds per server process by role) also ``cpu_us_by_part``."""
    results: dict[str, dict[str, Any]] = {}
    for phase in phases:
        time.sleep(warmup)
        s0, c0, m0 = server.cpu(), pool.cpu(), machine_busy()
        p0 = parts() if parts else {}
        time.sleep(seconds)
        s1, c1, m1 = server.cpu(), pool.cpu(), machine_busy()
        p1 = parts() if parts else {}
        reports = pool.step(phase, seconds + warmup + 120)
        latencies = np.concatenate([np.frombuffer(r["latencies"], dtype=np.int64) for r in reports])
        calls = max(int(latencies.size), 1)
        results[phase] = {
            "calls": int(latencies.size),
            "rate": latencies.size / seconds,
            **percentiles(latencies),
            "failures": sum(r["failures"] for r in reports),
            "errors": [e for r in reports for e in r["errors"]][:3],
            "server_cpu_us": (s1 - s0) / calls * 1e6,
            "client_cpu_us": (c1 - c0) / calls * 1e6,
            "others_cpu_pct": others_pct(m1 - m0, s1 - s0 + c1 - c0, seconds),
            "cpu_us_by_part": {k: (p1[k] - p0.get(k, 0.0)) / calls * 1e6 for k in p1},
        }
    return results


def flatten(results: dict[str, dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    """The scenario's metrics: ``<phase>_per_s``, ``<phase>_p50_ms`` ... and totals; errors go to notes."""
    metrics: dict[str, Any] = {}
    for phase, result in results.items():
        if result["errors"]:
            notes.append(f"{phase}: {result['errors'][0]}")
        metrics |= {
            f"{phase}_per_s": result["rate"],
            f"{phase}_p50_ms": result["p50_ms"],
            f"{phase}_p99_ms": result["p99_ms"],
            f"{phase}_max_ms": result["max_ms"],
            f"{phase}_server_cpu_us": result["server_cpu_us"],
            f"{phase}_client_cpu_us": result["client_cpu_us"],
        }
        metrics |= {f"{phase}_{part}_cpu_us": v for part, v in result.get("cpu_us_by_part", {}).items()}
    metrics["failures"] = sum(r["failures"] for r in results.values())
    metrics["others_cpu_pct"] = max(r["others_cpu_pct"] for r in results.values())
    return metrics
