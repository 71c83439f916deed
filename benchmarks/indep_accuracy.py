"""Triage accuracy on workspaces from the independent generator (benchmarks/indepgen).

The generator was written from docs/workspace.md alone (never reading hawknb/simulate or
hawknb/triage), with its own names, magnitudes, cadence and time zones. Each scenario is
generated into a temporary directory (truth outside the workspace), triaged in-process through
the public API, and scored with exactly the rules of benchmarks/triage_accuracy.py (`score`).

Seeds are split and the split is the point:
  * seeds 0-99 are for TUNING: look at them, debug triage on them (`--tune` runs 0-3);
  * seeds 100000 and up are HELD OUT: run them once per triage version, report the numbers,
    never debug on them (`--heldout` runs 100000-100003;
    widen with --seeds 100000-100009 when there is time).

    python benchmarks/indep_accuracy.py --tune                       # 6 kinds x 3 difficulties
    python benchmarks/indep_accuracy.py --heldout       # -> benchmarks/results/indep_accuracy.md
    python benchmarks/indep_accuracy.py --seeds 0-4 --kinds bad_snapshot --knob canary_share=0.03,0.1,0.5
    python benchmarks/indep_accuracy.py --seeds 0-2 --difficulties medium      # a quick look
    python benchmarks/indep_accuracy.py --seeds 0-3 --oracle-topline  # later steps on their own

--oracle-topline passes triage the incident's true metric and a time inside it (what
`hawknb triage --metric --start` does), so the snapshot/feature steps are scored apart from
the top-line choice.

Writes a difficulty curve (fully-right per kind x level) as Markdown to --out and one line per
scenario to --runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.indepgen import DIFFICULTIES, KINDS, TRUTH_KEYS, generate  # noqa: E402
from benchmarks.triage_accuracy import (  # noqa: E402
    SPAWN,
    calibration_report,
    evidence_of,
    parse_seeds,
    score,
)

TUNE_SEEDS = "0-3"
HELDOUT_SEEDS = "100000-100003"
FIELDS = ("cause", "model", "snapshot", "features", "root", "layer")
# not part of "fully right": whether triage followed the incident's metric (misses start there)
DIAGNOSTIC = ("metric",)


#: with --oracle-topline, triage starts this long after the true onset (inside the incident)
ORACLE_START_AFTER = timedelta(hours=1)


def oracle_args(truth: dict[str, Any]) -> dict[str, Any]:
    """What a person who knows the incident would pass (``hawknb triage --metric --start``):
    the incident's metric and a time inside it, so the later steps are measured on their own."""
    onset = datetime.fromisoformat(truth["onset"])
    return {"metric": truth["metric"], "start": onset + ORACLE_START_AFTER}


def run_one(job: tuple[str, int, str, dict[str, Any], str, bool]) -> dict[str, Any]:
    """Generate, triage and score one scenario (in a worker process)."""
    import hawknb

    kind, seed, difficulty, overrides, level, oracle = job
    with tempfile.TemporaryDirectory() as tmp:
        ws_dir, truth_path = Path(tmp) / "ws", Path(tmp) / "truth.json"
        t0 = time.perf_counter()
        truth = generate(ws_dir, truth_path, kind, seed, difficulty, **overrides)
        t1 = time.perf_counter()
        try:
            given = oracle_args(truth) if oracle else {}
            inv = hawknb.triage(hawknb.Workspace.open(ws_dir), progress=False, **given)
            verdict = inv.verdict.to_dict()
            hyp = inv.finding("hypotheses")
            # the best hypothesis' support, which benchmarks/fit_calibration.py maps
            support = hyp.evidence["hypotheses"][0]["support"] if hyp else verdict["confidence"]
            recorded = evidence_of(inv)
            error = None
        except Exception as exc:  # a crash is a wrong answer, recorded with its message
            verdict = {"cause": "error", "confidence": 0.0}
            support = 0.0
            recorded = {"evidence": {}, "hypotheses": []}
            error = f"{type(exc).__name__}: {exc}"[:300]
        t2 = time.perf_counter()
        truth["model_features"] = {
            p.name: json.loads((p / "features.json").read_text())
            for p in (ws_dir / "snapshots").iterdir()
            if (p / "features.json").exists()
        }
    verdict = {k: v for k, v in verdict.items() if k not in ("findings", "summary")}
    scored = score(verdict, truth)
    scored["metric"] = verdict.get("metric") == truth["metric"]
    return {
        "kind": kind,
        "seed": seed,
        "difficulty": difficulty,
        "level": level,
        "verdict": verdict,
        "support": support,
        **recorded,
        "error": error,
        "score": scored,
        "truth": {k: truth.get(k) for k in (*TRUTH_KEYS, "metric", "kind")},
        "generate_s": t1 - t0,
        "triage_s": t2 - t1,
    }


def frac(rows: list[dict[str, Any]], key: str) -> str:
    vals = [r["score"][key] for r in rows if r["score"].get(key) is not None]
    return f"{sum(vals)}/{len(vals)}" if vals else "–"


def curve(rows: list[dict[str, Any]], title: str, levels: list[str], knob: str) -> str:
    """Fully-right per kind (rows) x level (columns), then per-field totals per level."""
    kinds = [k for k in KINDS if any(r["kind"] == k for r in rows)]
    head = f"| kind \\ {knob} | " + " | ".join(levels) + " |"
    lines = [
        f"### {title}",
        "",
        "Fully right (all scored fields):",
        "",
        head,
        "|---|" + "---|" * len(levels),
    ]
    for kind in [*kinds, "all"]:
        cells = [
            frac([r for r in rows if r["level"] == lv and kind in ("all", r["kind"])], "full")
            for lv in levels
        ]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per field (all kinds):",
        "",
        "| level | n | " + " | ".join(FIELDS) + " | top-line metric* | triage s (mean) |",
        "|---|---|" + "---|" * (len(FIELDS) + 2),
    ]
    for lv in levels:
        rs = [r for r in rows if r["level"] == lv]
        if not rs:
            continue
        secs = sum(r["triage_s"] for r in rs) / len(rs)
        lines.append(
            f"| {lv} | {len(rs)} | "
            + " | ".join(frac(rs, f) for f in (*FIELDS, *DIAGNOSTIC))
            + f" | {secs:.1f} |"
        )
    lines += [
        "",
        "\\* diagnostic, not part of fully right: the verdict followed the incident's metric.",
    ]
    return "\n".join(lines)


def line(r: dict[str, Any]) -> str:
    v, t = r["verdict"], r["truth"]
    mark = "ok " if r["score"]["full"] else "BAD"
    s = (
        f"{mark} {r['kind']:<17} {r['level']:<10} seed {r['seed']:<6} -> {v.get('cause')!s:<13} "
        f"model={v.get('model')} snap={v.get('snapshot')} layer={v.get('layer')} "
        f"up={(v.get('upstream') or [])[:1]} feats={(v.get('features') or [])[:3]} "
        f"metric={v.get('metric')} conf={float(v.get('confidence') or 0):.2f}"
    )
    if not r["score"]["full"]:
        s += (
            f"\n    truth: cause={t['cause']} model={t['model']} snap={t['snapshot']} "
            f"layer={t['layer']} up={t['upstream'][:1]} feats={t['features'][:3]} "
            f"metric={t['metric']} onset={t['onset']}"
        )
        if r["error"]:
            s += f"\n    error: {r['error']}"
    return s


def jobs_for(args: argparse.Namespace) -> tuple[list[tuple], list[str], str]:
    """(kind, seed, difficulty, overrides, level) per scenario, the levels and their name."""
    seeds = parse_seeds(args.seeds)
    kinds = [k for k in args.kinds.split(",") if k]
    pinned = dict(item.split("=", 1) for item in args.set)
    extra = "".join(f", {k}={v}" for k, v in pinned.items())
    if args.knob:
        name, values = args.knob.split("=", 1)
        levels = [v for v in values.split(",") if v]
        base = args.difficulties.split(",")[0]
        jobs = [
            (k, s, base, {**pinned, name: v}, v, args.oracle_topline)
            for v in levels
            for k in kinds
            for s in seeds
        ]
        return jobs, levels, f"{name} ({base}{extra})"
    levels = [d for d in args.difficulties.split(",") if d]
    jobs = [
        (k, s, d, dict(pinned), d, args.oracle_topline)
        for d in levels
        for k in kinds
        for s in seeds
    ]
    return jobs, levels, f"difficulty{extra}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default=None, help="e.g. 0-4,7 (default: the --tune seeds)")
    ap.add_argument("--tune", action="store_true", help=f"tuning seeds {TUNE_SEEDS}")
    ap.add_argument("--heldout", action="store_true", help=f"held-out seeds {HELDOUT_SEEDS}")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--difficulties", default=",".join(DIFFICULTIES))
    ap.add_argument("--knob", help="sweep one knob instead of difficulty: NAME=v1,v2,...")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pin another knob for every scenario (repeatable), e.g. --set drop=0.03",
    )
    ap.add_argument(
        "--oracle-topline",
        action="store_true",
        help="give triage the incident's true metric and a time 1 h after its onset "
        "(as --metric/--start would), to score the later steps apart from the top-line choice",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--out",
        default=None,
        help="default: benchmarks/results/indep_accuracy.md for held-out seeds, "
        "indep_accuracy_tune.md otherwise",
    )
    ap.add_argument("--runs", default=None, help="per-scenario lines (default: next to --out)")
    ap.add_argument("--json", help="also write every verdict and score here")
    args = ap.parse_args()
    if args.tune and args.heldout:
        ap.error("--tune and --heldout: pick one")
    split = "held-out" if args.heldout else "tuning"
    args.seeds = args.seeds or (HELDOUT_SEEDS if args.heldout else TUNE_SEEDS)
    held = [s >= 100000 for s in parse_seeds(args.seeds)]
    if any(held) and not all(held):
        ap.error(f"--seeds {args.seeds}: mixes tuning (<100000) and held-out seeds; run each apart")
    if all(held):
        split = "held-out"
    elif args.heldout:
        ap.error(f"--heldout with --seeds {args.seeds}: held-out seeds are 100000 and up")
    jobs, levels, knob = jobs_for(args)
    name = "indep_accuracy.md" if split == "held-out" else "indep_accuracy_tune.md"
    if args.oracle_topline:
        name = name.replace(".md", "_oracle.md")
    args.out = args.out or str(ROOT / "benchmarks" / "results" / name)
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=SPAWN) as pool:
        for r in pool.map(run_one, jobs):
            rows.append(r)
            print(line(r), file=sys.stderr, flush=True)
    cmd = "python benchmarks/indep_accuracy.py " + " ".join(sys.argv[1:])
    if args.oracle_topline:
        split += ", oracle top-line"
    text = "\n".join(
        [
            "## Triage accuracy on the independent generator",
            "",
            f"`{cmd}` ({split} seeds {args.seeds}; scored with benchmarks/triage_accuracy.py's rules)",
            "",
            curve(rows, f"{split.capitalize()} seeds {args.seeds}", levels, knob),
            "",
            "### Calibration of the verdict confidence",
            "",
            calibration_report(
                [r for r in rows if not r["error"]], lambda r: f"independent {r['level']}"
            ),
            "",
        ]
    )
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    runs = Path(args.runs) if args.runs else out.with_name(out.stem + "_runs.txt")
    runs.write_text(f"# {cmd}\n" + "\n".join(line(r) for r in rows) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
