"""``python -m bench [--quick] [--scenario NAME ...] [--system NAME ...]``: run, record, report."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import report
from bench.profile import summarize
from bench.scenarios import SCENARIOS, RunContext, load
from bench.servers import SERVERS, UvicornOptions, launch

RESULTS = Path(__file__).resolve().parent / "results"
REPORT = RESULTS.parent / "RESULTS.md"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_scenario(
    name: str, quick: bool, systems: list[str] | None, options: UvicornOptions, out: Path, profile: bool
) -> dict[str, Any]:
    module = load(name)
    size = module.size(quick)
    record: dict[str, Any] = {
        "scenario": name,
        "title": module.TITLE,
        "mode": "quick" if quick else "full",
        "size": size,
        "date": report.now(),
        "hardware": report.hardware(),
        "load_before": report.loadavg(),
        "systems": {},
    }
    for system in module.SYSTEMS:
        if systems and system not in systems:
            continue
        spec = SERVERS[system]
        log(f"{name} ({record['mode']}) against {system}")
        ctx_notes: list[str] = []
        entry: dict[str, Any] = {"server": spec.describe(options), "notes": ctx_notes, "date": report.now()}
        started = time.monotonic()
        try:
            profile_path = out / "profiles" / f"{name}.{system}.txt" if profile else None
            with launch(spec, options, out / "logs" / f"{name}.{system}.log", profile_path) as server:
                ctx = RunContext(
                    server=server, size=size, log=lambda m, s=system: log(f"  {s}: {m}"), notes=ctx_notes
                )
                entry["metrics"] = module.run(ctx)
                if not server.alive():
                    ctx_notes.append(f"server exited during the run: {server.log_tail(5)}")
        except Exception as exc:
            log(f"  {system} failed: {exc}")
            entry["error"] = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            )
            entry["traceback"] = traceback.format_exc()
        if profile_path is not None and profile_path.exists():
            entry["profile"] = summarize(profile_path)
        entry["wall_seconds"] = round(time.monotonic() - started, 1)
        record["systems"][system] = entry
        if "metrics" in entry:
            log(
                f"  {system}: "
                + ", ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in entry["metrics"].items()
                )
            )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: each scenario under a minute")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable; default all"
    )
    parser.add_argument("--system", action="append", choices=sorted(SERVERS), help="repeatable; default all")
    parser.add_argument("--ws", default=UvicornOptions.ws, help="uvicorn --ws implementation")
    parser.add_argument("--loop", default=UvicornOptions.loop, help="uvicorn --loop implementation")
    parser.add_argument("--http", default=UvicornOptions.http, help="uvicorn --http implementation")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (default bench/results)")
    parser.add_argument(
        "--profile", action="store_true", help="sample each server with py-spy (slows it down)"
    )
    parser.add_argument("--no-report", action="store_true", help="write the JSON only, not RESULTS.md/plots")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C so every context manager kills its servers and workers.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    options = UvicornOptions(ws=args.ws, loop=args.loop, http=args.http)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.scenario or list(SCENARIOS):
        record = run_scenario(name, args.quick, args.system, options, args.out, args.profile)
        record["profiled"] = args.profile
        path = args.out / f"{name}.json"
        if path.exists():  # a partial run (--system) keeps the other systems of the same mode
            previous = json.loads(path.read_text())
            if previous.get("mode") == record["mode"]:
                record["systems"] = previous.get("systems", {}) | record["systems"]
        path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
        log(f"wrote {path}")
    if not args.no_report:
        written = report.write(args.out, REPORT if args.out == RESULTS else args.out / "RESULTS.md")
        log("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
