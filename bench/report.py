"""RESULTS.md and PNG plots from ``results/<scenario>.json``; hardware facts for the record."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import psutil

from bench.scenarios import SCENARIOS, Metric, load

ANALYSIS = Path(__file__).resolve().parent / "ANALYSIS.md"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware() -> dict[str, Any]:
    import uvicorn
    import websockets

    return {
        "cpu": cpu_model(),
        "cores": psutil.cpu_count(logical=True),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "uvicorn": uvicorn.__version__,
        "websockets": websockets.__version__,
    }


def _plot(name: str, record: dict[str, Any], metrics: list[Metric], targets: list[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in metrics if m.plot]
    systems = [s for s, e in record["systems"].items() if "metrics" in e]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], shown, strict=True):
        values = [record["systems"][s]["metrics"].get(metric.key) or 0 for s in systems]
        bars = ax.bar(
            systems, values, color=["#d9480f" if s.startswith("relaygate") else "#868e96" for s in systems]
        )
        ax.bar_label(bars, labels=[metric.format(v) for v in values], fontsize=8)
        for target in targets:
            if target.metric == metric.key and target.versus is None:
                ax.axhline(
                    target.value,
                    color="#2b8a3e",
                    linestyle="--",
                    linewidth=1,
                    label=f"target {target.value:g}",
                )
                ax.legend(fontsize=7)
        ax.set_title(metric.label, fontsize=9)
        ax.tick_params(axis="x", labelsize=7, labelrotation=20)
    fig.suptitle(f"{name} ({record['mode']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _scenario_section(
    name: str, record: dict[str, Any], out: Path, md_dir: Path
) -> tuple[list[str], list[Path]]:
    module = load(name)
    lines = [f"## {name}: {module.TITLE}", ""]
    size = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in record["size"].items())
    lines += [
        f"Mode **{record['mode']}** ({size}); run {record['date']}; load average before: "
        f"{record.get('load_before')}.",
        "",
    ]
    lines += [
        "| system | " + " | ".join(m.label for m in module.METRICS) + " |",
        "| --- " * (len(module.METRICS) + 1) + "|",
    ]
    results: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for system, entry in record["systems"].items():
        if "metrics" in entry:
            results[system] = entry["metrics"]
            cells = [m.format(entry["metrics"].get(m.key)) for m in module.METRICS]
        else:
            cells = ["-"] * len(module.METRICS)
            notes.append(f"- **{system}** did not run: `{entry.get('error')}`")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
        notes += [f"- {system}: {note}" for note in entry.get("notes", [])]
    lines += ["", "| target (performance.md) | measured | threshold | verdict |", "| --- | --- | --- | --- |"]
    by_key = {m.key: m for m in module.METRICS}
    for target in module.TARGETS:
        verdict, measured, threshold = target.evaluate(results)
        metric = by_key[target.metric]
        mark = {"met": "✅ met", "missed": "❌ missed"}.get(verdict, verdict)
        lines.append(
            f"| {target.text} | {metric.format(measured)} | {target.op} {metric.format(threshold)} | {mark} |"
        )
    servers = sorted({f"{s}: {e['server']}" for s, e in record["systems"].items() if e.get("server")})
    lines += ["", "Servers: " + "; ".join(servers) + "."]
    if notes:
        lines += ["", *notes]
    for system, entry in record["systems"].items():
        profile = entry.get("profile")
        if profile and profile["samples"]:
            lines += ["", f"Profile of {system} (py-spy, {profile['samples']:,} samples while busy; self time):", "",
                      "| function | self % | | function | inclusive % |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
            for (own, own_pct), (inc, inc_pct) in zip(profile["self"], profile["inclusive"], strict=False):
                lines.append(f"| `{own}` | {own_pct} | | `{inc}` | {inc_pct} |")
    if record.get("profiled"):
        lines += [
            "",
            "This run was profiled: py-spy sampling slows the servers, so rates are lower than unprofiled.",
        ]
    written: list[Path] = []
    if results:
        png = out / f"{name}.png"
        _plot(name, record, module.METRICS, module.TARGETS, png)
        lines += ["", f"![{name}]({os.path.relpath(png, md_dir)})"]
        written.append(png)
    return [*lines, ""], written


def write(out: Path, md_path: Path) -> list[Path]:
    records = {
        name: json.loads((out / f"{name}.json").read_text())
        for name in SCENARIOS
        if (out / f"{name}.json").exists()
    }
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m bench` (`make bench`; `make bench-quick` for the quick sizes) from "
        "`bench/results/*.json`. Every server runs on 127.0.0.1 as a child process; the load generator "
        "is separate processes of raw `websockets` clients (see `bench/wire.py`). CPU per message is "
        "user+system time of the server process, and of all client processes, over the measured window "
        "divided by the messages in it.",
        "",
    ]
    if records:
        hw = next(iter(records.values()))["hardware"]
        lines += [
            "**Hardware**: " + f"{hw['cpu']}, {hw['cores']} cores, {hw['ram_gb']} GB RAM, {hw['os']}, "
            f"Python {hw['python']}, uvicorn {hw['uvicorn']}, websockets {hw['websockets']}. "
            "The machine is shared with other engineers' work, so numbers move between runs; the load "
            "average before each scenario is recorded. Server and load generator share the 2 cores.",
            "",
        ]
    written: list[Path] = []
    for name, record in records.items():
        section, pngs = _scenario_section(name, record, out, md_path.parent)
        lines += section
        written += pngs
    if ANALYSIS.exists():
        lines += [ANALYSIS.read_text().rstrip(), ""]
    md_path.write_text("\n".join(lines))
    return [md_path, *written]
