"""Triage accuracy and calibration across the independent generator's difficulty grid.

The hard preset (benchmarks/indepgen/knobs.py) moves every trait of issue 9 at once; this
moves one knob at a time away from it, in both directions where that makes sense, so a reader
sees which trait costs what, and whether the verdict's confidence still matches how often it
is right there (issue 9: "across your difficulty grid, the verdict's confidence matches how
often it is right"). Each knob is one run of `benchmarks/indep_accuracy.py` (same generator,
same scoring); this script runs them and writes one table over all of them.

    python benchmarks/difficulty_grid.py --seeds 100068-100069 --out benchmarks/results/difficulty_grid_100068.md
    python benchmarks/difficulty_grid.py --summarize DIR --out FILE   # tables from earlier runs

Run it on seeds never looked at (held out: 100000 and up, above the last used) to report it;
on tuning seeds (0-99) to look for weaknesses. Two seeds per cell is 12 scenarios per level
(4 or 8 for the kind-specific knobs): a curve to read for large effects, not single points.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.triage_accuracy import reliability, right  # noqa: E402

#: (name, the knob swept with its levels, knobs pinned for every level, kinds (all if None)).
#: The cadence rows keep the serving rows per hour of the preset (24 per 30-minute slot).
GRID: tuple[tuple[str, str | None, tuple[str, ...], str | None], ...] = (
    ("hard preset", None, (), None),
    ("rows_per_slot", "rows_per_slot=6,12", (), None),
    ("cadence_min 10", "cadence_min=10", ("rows_per_slot=8",), None),
    ("cadence_min 60", "cadence_min=60", ("rows_per_slot=48",), None),
    ("history_days", "history_days=7,21", (), None),
    ("drop", "drop=0.02,0.08", (), None),
    ("distractor_scale", "distractor_scale=0.5,2.2", (), None),
    ("label_delay_h", "label_delay_h=2,24", (), None),
    ("canary_share", "canary_share=0.03,0.25", (), "bad_snapshot,training_data"),
    ("blowup_rows", "blowup_rows=0.03,0.15", (), "activation_blowup"),
)


def slug(name: str) -> str:
    return name.replace(" ", "_")


def command(
    name: str, knob: str | None, pins: tuple[str, ...], kinds: str | None, seeds: str, out: Path
) -> list[str]:
    """The indep_accuracy.py run for one grid row, writing OUT/<name>.json and .md."""
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "indep_accuracy.py"),
        "--seeds",
        seeds,
        "--difficulties",
        "hard",
        "--jobs",
        "1",
    ]
    if knob:
        cmd += ["--knob", knob]
    for pin in pins:
        cmd += ["--set", pin]
    if kinds:
        cmd += ["--kinds", kinds]
    return [*cmd, "--out", str(out / f"{slug(name)}.md"), "--json", str(out / f"{slug(name)}.json")]


def rows_of(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else []


def table(out: Path) -> str:
    """One line per (knob, level): scenarios, fully right, cause right, top line followed, the
    ECE of the verdicts' confidence, and the `none` verdicts (how many right, how confident)."""
    head = (
        "| knob | level | scenarios | fully right | cause right | incident's metric | ECE | "
        "cause verdicts: right / mean confidence | `none` verdicts: right / mean confidence |\n"
        "|---|---|---:|---:|---:|---:|---:|---|---|\n"
    )
    body = []
    for name, knob, _pins, _kinds in GRID:
        runs = [r for r in rows_of(out / f"{slug(name)}.json") if not r.get("error")]
        levels = sorted({str(r.get("level")) for r in runs}, key=_num)
        for level in levels:
            rs = [r for r in runs if str(r.get("level")) == level]
            body.append(_line(name if knob else "(none)", level if knob else "hard", rs))
    return head + "\n".join(body) + "\n"


def _num(level: str) -> float:
    try:
        return float(level)
    except ValueError:
        return float("inf")


def _line(knob: str, level: str, rs: list[dict[str, Any]]) -> str:
    n = len(rs)
    full = sum(bool(r["score"].get("full")) for r in rs)
    cause = sum(bool(r["score"].get("cause")) for r in rs)
    metric = sum(bool(r["score"].get("metric")) for r in rs)
    _, ece = reliability(rs)
    causes = [r for r in rs if r["verdict"]["cause"] != "none"]
    nones = [r for r in rs if r["verdict"]["cause"] == "none"]

    def part(group: list[dict[str, Any]]) -> str:
        if not group:
            return "–"
        mean = sum(r["verdict"]["confidence"] for r in group) / len(group)
        return f"{sum(right(r) for r in group)}/{len(group)} at {mean:.2f}"

    return (
        f"| {knob} | {level} | {n} | {full}/{n} | {cause}/{n} | {metric}/{n} | {ece:.3f} | "
        f"{part(causes)} | {part(nones)} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="100068-100069")
    ap.add_argument(
        "--work", type=Path, help="folder for the per-knob runs (default: beside --out)"
    )
    ap.add_argument("--summarize", type=Path, help="only write the table from runs in this folder")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    work = args.summarize or args.work or args.out.with_suffix("")
    if not args.summarize:
        work.mkdir(parents=True, exist_ok=True)
        for name, knob, pins, kinds in GRID:
            print(f"[grid] {name}", file=sys.stderr)
            subprocess.run(command(name, knob, pins, kinds, args.seeds, work), check=True)
    text = (
        f"## Difficulty grid, independent generator, seeds {args.seeds}\n\n"
        f"`python benchmarks/difficulty_grid.py --seeds {args.seeds} --out {args.out}`: the hard "
        "preset, then one knob at a time away from it (per-knob curves and per-scenario lines "
        f"in `{work}`). Scored with benchmarks/triage_accuracy.py's rules; ECE over all "
        "verdicts of the row (a `none` verdict's confidence is that nothing is wrong).\n\n"
        + table(work)
    )
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
