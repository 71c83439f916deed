"""How `hawknb.triage` scales with the size of the serving log, step by step.

Simulates workspaces of 1x, 10x and 40x the default serving rows (same days and models, more
rows per hour, so the timeline and the planted incident are the same) for an `upstream_data`
and a `bad_snapshot` incident, and times each triage step (best of --repeat runs after one
warm-up). Every case runs in its own process, so its peak memory is its own.

    python benchmarks/triage_scale.py [--workdir /tmp/hawknb-scale] [--factors 1,10,40]
        [--kinds upstream_data,bad_snapshot] [--repeat 3] [--seed 11]
        [--json out.json] [--baseline before.json]

`--workdir` keeps the simulated workspaces between runs (simulating 40x takes minutes);
`--baseline` adds before/after columns from an earlier `--json`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from triage_speed import STEPS as SPEED_STEPS

STEPS = ["validate", *SPEED_STEPS]
DEFAULT_ROWS_PER_HOUR = 60


def run_one(ws_dir: str, repeat: int) -> dict:
    """Time triage on one workspace (in this process); the result as a dict."""
    import resource

    import polars as pl

    import hawknb

    rows = pl.scan_parquet(Path(ws_dir) / "serving.parquet").select(pl.len()).collect().item()
    hawknb.triage(hawknb.Workspace.open(ws_dir), progress=False)  # warm-up
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        hawknb.Workspace.open(ws_dir).validate()  # timed alone: triage runs it first
        t_val = time.perf_counter() - t0
        t0 = time.perf_counter()
        inv = hawknb.triage(hawknb.Workspace.open(ws_dir), progress=False)
        total = time.perf_counter() - t0
        if best is None or total < best["total"]:
            steps = {f.step: f.seconds for f in inv.findings if f.step != "verdict"}
            steps["validate"] = t_val
            v = inv.verdict
            best = {
                "total": total,
                "steps": steps,
                "verdict": {
                    "cause": v.cause,
                    "model": v.model,
                    "snapshot": v.snapshot,
                    "layer": v.layer,
                    "features": v.features[:5],
                    "upstream": v.upstream[:3],
                    "confidence": round(v.confidence, 4),
                },
            }
    assert best is not None
    best["rows"] = rows
    best["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--factors", default="1,10,40")
    ap.add_argument("--kinds", default="upstream_data,bad_snapshot")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", default=None)
    ap.add_argument("--baseline", default=None, help="an earlier --json: before/after columns")
    ap.add_argument("--changed", default="models,features", help="steps for the before/after table")
    ap.add_argument("--render", default=None, help="only render an earlier --json")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "triage_scale.md"))
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:
        print(json.dumps(run_one(args.one, args.repeat)))
        return 0
    if args.render:
        results = json.loads(Path(args.render).read_text())
        baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
        text = render(results, baseline, args.repeat, args.changed.split(","))
        print(text)
        Path(args.out).write_text(text)
        return 0

    from hawknb.simulate import simulate

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory()
        work = Path(tmp.name)
    else:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for kind in args.kinds.split(","):
            for factor in [int(f) for f in args.factors.split(",")]:
                ws_dir = work / f"{kind}_x{factor}"
                if not (ws_dir / "serving.parquet").exists():
                    t0 = time.perf_counter()
                    simulate(
                        ws_dir,
                        incident=kind,
                        seed=args.seed,
                        rows_per_hour=DEFAULT_ROWS_PER_HOUR * factor,
                        truth_path=work / f"{kind}_x{factor}.truth.json",
                        force=True,
                    )
                    print(
                        f"simulated {ws_dir} in {time.perf_counter() - t0:.0f} s", file=sys.stderr
                    )
                out = subprocess.run(
                    [sys.executable, __file__, "--one", str(ws_dir), "--repeat", str(args.repeat)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                res = json.loads(out.stdout.strip().splitlines()[-1])
                res.update(kind=kind, factor=factor)
                results.append(res)
                print(
                    f"{kind:<14} x{factor:<3} {res['rows']:>9,} rows  {res['total']:6.2f} s  "
                    f"{res['rows'] / res['total']:>10,.0f} rows/s  {res['peak_rss_mb']:,.0f} MB  "
                    + " ".join(f"{k}={v:.2f}" for k, v in res["steps"].items()),
                    file=sys.stderr,
                )
    finally:
        if tmp is not None:
            tmp.cleanup()

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    text = render(results, baseline, args.repeat, args.changed.split(","))
    print(text)
    Path(args.out).write_text(text)
    return 0


def _cell(steps: dict, step: str) -> str:
    return f"{steps[step]:.2f}" if step in steps else "–"


def render(
    results: list[dict], baseline: list[dict] | None, repeat: int, changed: list[str]
) -> str:
    factors = ", ".join(f"x{f}" for f in sorted({r.get("factor", 1) for r in results}))
    lines = [
        f"# Triage scaling (serving rows {factors}; best of {repeat}, 2-core machine)",
        "",
        "`python benchmarks/triage_scale.py` — seconds per step; `validate` is the workspace "
        "check `triage` runs first (timed on its own, included in triage s); rows/s is serving rows over the whole triage.",
        "",
        "| kind | rows | verdict | triage s | rows/s | peak MB | " + " | ".join(STEPS) + " |",
        "|---|---:|---|---:|---:|---:|" + "---:|" * len(STEPS),
    ]
    for r in results:
        cells = " | ".join(_cell(r["steps"], s) for s in STEPS)
        lines.append(
            f"| {r['kind']} | {r['rows']:,} | {r['verdict']['cause']} | {r['total']:.2f} | "
            f"{r['rows'] / r['total']:,.0f} | {r['peak_rss_mb']:,.0f} | {cells} |"
        )
    if baseline:
        before = {(b["kind"], b["factor"]): b for b in baseline}
        lines += [
            "",
            f"Before and after (seconds, peak MB) for the steps whose code changed ({', '.join(changed)}):",
            "",
        ]
        head = ["triage", *changed]
        lines += [
            "| kind | rows | "
            + " | ".join(f"{h} before | {h} after" for h in head)
            + " | peak MB before | peak MB after |",
            "|---|---:|" + "---:|---:|" * (len(head) + 1),
        ]
        for r in results:
            b = before.get((r["kind"], r["factor"]))
            if b is None:
                continue
            cells = [f"{b['total']:.2f} | {r['total']:.2f}"]
            cells += [f"{_cell(b['steps'], s)} | {_cell(r['steps'], s)}" for s in changed]
            cells.append(f"{b['peak_rss_mb']:,.0f} | {r['peak_rss_mb']:,.0f}")
            lines.append(f"| {r['kind']} | {r['rows']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
