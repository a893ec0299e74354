"""Scenario interface and registry.

A scenario is one module ``bench/scenarios/<name>.py`` exposing:

- ``NAME`` (the CLI name), ``TITLE``, ``SYSTEMS`` (server names from ``bench.servers.SERVERS``);
- ``METRICS``: the :class:`Metric` columns of its table and plot, ``TARGETS``: :class:`Target` rows;
- ``size(quick: bool) -> dict``: the parameters of the quick (< 1 minute) or full run;
- ``run(ctx: RunContext) -> dict``: drive one started server, return the metric values.

The runner starts and kills the servers, writes ``results/<name>.json`` and the report; add a
module and a line in :data:`SCENARIOS` to add a scenario.
"""

from __future__ import annotations

import importlib
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from bench.servers import ServerProcess

SCENARIOS = {
    "idle-connections": "bench.scenarios.idle_connections",
    "fanout": "bench.scenarios.fanout",
    "roundtrip": "bench.scenarios.roundtrip",
    "presence-churn": "bench.scenarios.presence_churn",
    "large-room": "bench.scenarios.large_room",
    "gateway": "bench.scenarios.gateway",
    "rest": "bench.scenarios.rest",
    "history": "bench.scenarios.history",
    "soak": "bench.scenarios.soak",
}


def load(name: str) -> ModuleType:
    return importlib.import_module(SCENARIOS[name])


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    fmt: str = "{:,.0f}"
    plot: bool = False

    def format(self, value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return self.fmt.format(value)


OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Target:
    """``metric op value`` for ``system``; with ``versus``, the value is a factor of that system's metric."""

    text: str
    metric: str
    op: str
    value: float
    system: str = "relaygate"
    versus: str | None = None
    capped_by: str | None = None
    """A size metric: when the run was smaller than ``value`` (a machine limit), the target is not measurable."""

    def threshold(self, results: dict[str, dict[str, Any]]) -> float | None:
        if self.versus is None:
            return self.value
        base = results.get(self.versus, {}).get(self.metric)
        return None if base is None else self.value * float(base)

    def evaluate(self, results: dict[str, dict[str, Any]]) -> tuple[str, Any, float | None]:
        """(verdict, measured, threshold); verdict is met / missed / not measured."""
        measured = results.get(self.system, {}).get(self.metric)
        threshold = self.threshold(results)
        if measured is None or threshold is None:
            return "not measured", measured, threshold
        size = results.get(self.system, {}).get(self.capped_by) if self.capped_by else None
        if size is not None and float(size) < self.value:
            return f"not measurable here (run capped at {size:,})", measured, threshold
        return ("met" if OPS[self.op](float(measured), threshold) else "missed"), measured, threshold


@dataclass
class RunContext:
    server: ServerProcess
    size: dict[str, Any]
    log: Callable[[str], None]
    notes: list[str] = field(default_factory=list)


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores) so far."""
    import psutil

    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def others_pct(busy: float, ours: float, seconds: float) -> float:
    """Busy CPU of processes outside this run (other users of the shared machine), in % of one core."""
    return max(0.0, busy - ours) / seconds * 100 if seconds > 0 else 0.0


def split(total: int, parts: int) -> list[range]:
    """``range(total)`` cut into ``parts`` contiguous, nearly equal slices (global connection indices)."""
    bounds = [total * i // parts for i in range(parts + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(parts)]


def percentiles(samples_ns: Sequence[int] | Any, points: Sequence[float] = (50, 99)) -> dict[str, float]:
    """Latency percentiles and max in milliseconds from nanosecond samples."""
    import numpy as np

    data = np.asarray(samples_ns, dtype=np.int64)
    if data.size == 0:
        return {f"p{p:g}_ms": math.nan for p in points} | {"max_ms": math.nan}
    values = np.percentile(data, points) / 1e6
    return {f"p{p:g}_ms": float(v) for p, v in zip(points, values, strict=True)} | {
        "max_ms": float(data.max()) / 1e6
    }
