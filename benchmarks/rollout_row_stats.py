"""Row statistics of every new snapshot of generated workspaces, beside the truth.

What the row-level comparison (`hawknb.kernels.snapshot_rows`, as triage's rollout leads run
it: `triage.row_evidence`) reads for each snapshot first served after a workspace's first day,
with whether that snapshot is the incident's. It is how the bars of the row evidence
(ROW_Z, COLLAPSE_RATIO, COLLAPSE_Z) were read off TUNING seeds of both generators; rerun it
before moving one, and never on held-out seeds.

    python benchmarks/rollout_row_stats.py indep --seeds 0-27 --difficulty hard --out stats.json
    python benchmarks/rollout_row_stats.py sim --seeds 0-9 --cache /tmp/simcache --out sim.json
    python benchmarks/rollout_row_stats.py summary stats.json sim.json

The summary prints, per statistic, the incident snapshots and the largest values any other
new snapshot reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

import hawknb  # noqa: E402
from benchmarks.triage_accuracy import parse_seeds  # noqa: E402
from hawknb.triage import row_evidence as rows_of  # noqa: E402
from hawknb.workspace import contract as c  # noqa: E402

INDEP_KINDS = "bad_snapshot,activation_blowup,training_data,none,upstream_data,feature_coverage"


def snapshot_stats(ws_dir: Path, truth: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """Each new snapshot's comparison in its own first slice (as its lead is compared)."""
    ws = hawknb.Workspace.open(ws_dir)
    firsts = rows_of._snapshot_firsts(ws, {})
    new = firsts.filter(pl.col("first") >= firsts["first"].min() + rows_of.ROW_BEFORE)
    out = []
    for (model,), snaps in new.group_by([c.MODEL], maintain_order=True):
        read = rows_of._ModelRows(ws, model, snaps)
        for snap, first in snaps.select(c.SNAPSHOT, "first").iter_rows():

            def longer(arms: pl.DataFrame, first: object = first) -> pl.DataFrame:
                return rows_of._compare_slice(arms, first, rows_of.CANARY_SPAN)

            shifts = rows_of._compare_slice(read.rows(), first, rows_of.LEAD_SPAN)
            new = rows_of._first_served(
                read.rows(), first - rows_of._REACH, first, first + rows_of.LEAD_SPAN
            )
            shifts = rows_of._canaries_compared_longer(shifts, read.rows(), longer, new)
            for r in shifts.filter(pl.col(c.SNAPSHOT) == snap).iter_rows(named=True):
                r["first_ts"] = str(r["first_ts"])
                bad = snap == truth.get("snapshot") and model == truth.get("model")
                out.append({**r, "tag": tag, "cause": truth.get("cause"), "bad": bad})
    return out


def indep_stats(kinds: list[str], seeds: list[int], difficulty: str) -> list[dict[str, Any]]:
    from benchmarks.indepgen import generate

    rows: list[dict[str, Any]] = []
    for kind in kinds:
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                ws_dir, truth_path = Path(tmp) / "ws", Path(tmp) / "truth.json"
                truth = generate(ws_dir, truth_path, kind, seed, difficulty)
                rows += snapshot_stats(ws_dir, truth, f"indep/{kind}/{difficulty}/{seed}")
    return rows


def sim_stats(seeds: list[int], cache: Path) -> list[dict[str, Any]]:
    from hawknb.simulate import simulate
    from hawknb.simulate.truth import INCIDENT_KINDS

    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for kind in INCIDENT_KINDS:
            where = cache / f"{kind}_{seed}"  # the layout of triage_accuracy.py --cache
            if not (where / "truth.json").exists():
                simulate(where / "ws", incident=kind, seed=seed, truth_path=where / "truth.tmp")
                (where / "truth.tmp").rename(where / "truth.json")
            truth = json.loads((where / "truth.json").read_text())
            rows += snapshot_stats(where / "ws", truth, f"sim/{kind}/{seed}")
    return rows


def summary(rows: list[dict[str, Any]], top: int = 8) -> str:
    """The incident snapshots the tails miss (tail z under ROW_Z), then the other snapshots
    nearest to a collapse and those with the largest z."""

    def line(r: dict[str, Any]) -> str:
        cells = [f"{r[k]:.2f}" if r.get(k) is not None else "-" for k in STATS]
        return f"| {r['tag']} | {r['snapshot']} | {r['rows']} | {r['reference']} | " + " | ".join(
            cells
        )

    head = "| workspace | snapshot | rows | reference | " + " | ".join(STATS) + " |"
    rule = "|---" * (4 + len(STATS)) + "|"
    scored = [r for r in rows if r.get("spread_ratio") is not None]
    bad = sorted(
        (r for r in scored if r["bad"] and r["tail_z"] < rows_of.ROW_Z),
        key=lambda r: r["spread_ratio"],
    )
    others = [r for r in scored if not r["bad"]]
    narrow = sorted(others, key=lambda r: r["spread_ratio"])[:top]
    high = sorted(others, key=lambda r: -r["z"])[:top]
    n_bad = sum(r["bad"] for r in scored)
    parts = [f"{len(scored)} comparisons, {n_bad} of the incident's snapshot"]
    for title, part in (
        ("incident snapshots whose tail z is under ROW_Z", bad),
        ("narrowest others", narrow),
        ("largest z, others", high),
    ):
        parts += ["", f"**{title}**", "", head, rule, *(line(r) + " |" for r in part)]
    return "\n".join(parts)


STATS = ("tail_z", "range_z", "ks", "spread_ratio", "spread_z", "z")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("indep", "sim", "summary"))
    ap.add_argument("files", nargs="*", help="summary: the --out files to read")
    ap.add_argument("--seeds", default="0-3")
    ap.add_argument("--kinds", default=INDEP_KINDS)
    ap.add_argument("--difficulty", default="hard")
    ap.add_argument("--cache", type=Path, help="sim: simulated workspaces kept here")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.mode == "summary":
        rows = [r for f in args.files for r in json.loads(Path(f).read_text())]
        print(summary(rows))
        return 0
    seeds = parse_seeds(args.seeds)
    if args.mode == "indep":
        rows = indep_stats(args.kinds.split(","), seeds, args.difficulty)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = sim_stats(seeds, args.cache or Path(tmp))
    text = json.dumps(rows)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
