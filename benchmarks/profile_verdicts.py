"""Triage with a profile in place of the serving log gives the same verdicts as the full log.

For every (incident kind, seed): simulate a workspace (or reuse one from ``--cache``), profile
its serving log into a copy that has no ``serving.parquet``, triage both, and compare every
verdict field. For the profile's features step it also checks the window drift it read from
sketches against the exact drift of the full log over the same windows: a feature whose
|KS, PSI or W1 gap| exceeds the stated error counts as a miss.

    python benchmarks/profile_verdicts.py --seeds 0-24 --jobs 2 --cache /tmp/pv

Only the simulator's tuning seeds (0-24) belong here; held-out seeds are scored elsewhere.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

FIELDS = ("metric", "onset", "model", "experiment", "snapshot", "cause", "features", "upstream")


def _profiled_copy(ws: Path, out: Path, bucket: str) -> Path:
    from hawknb.profile import profile

    out.mkdir(parents=True)
    for item in ws.iterdir():
        if item.name != "serving.parquet":
            (out / item.name).symlink_to(item.resolve())
    profile(ws / "serving.parquet", bucket=bucket).save(out / "profile")
    return out


def _drift_misses(full: Any, prof: Any, ranking: Any) -> dict[str, Any]:
    """Exact drift of the full log vs the profile's sketch drift over the ranking's windows."""
    feats = ranking.table["feature"].to_list()
    exact = full.feature_drift(ranking.model, feats, ranking.reference, ranking.anomaly)
    approx = prof.feature_drift(ranking.model, feats, ranking.reference, ranking.anomaly)
    out: dict[str, Any] = {"features": len(feats)}
    for k, slack in (("ks", 0.0), ("psi", 1e-3), ("wasserstein", 1e-9)):
        gap = (exact[k] - approx[k]).abs()
        bad = (gap > approx[f"{k}_error"] + slack).fill_null(False)
        out[f"{k}_misses"] = int(bad.sum())
        out[f"{k}_max_gap"] = float(gap.max() or 0.0)
    return out


def run_one(kind: str, seed: int, cache: str | None, bucket: str) -> dict[str, Any]:
    import hawknb
    from hawknb.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        base = (Path(cache) if cache else Path(tmp)) / f"{kind}_{seed}"
        if not (base / "truth.json").exists():
            simulate(base / "ws", incident=kind, seed=seed, truth_path=base / "truth.tmp")
            (base / "truth.tmp").rename(base / "truth.json")
        prof_dir = Path(tmp) / "profiled"
        t0 = time.perf_counter()
        _profiled_copy(base / "ws", prof_dir, bucket)
        t1 = time.perf_counter()
        full = hawknb.Workspace.open(base / "ws")
        prof = hawknb.Workspace.open(prof_dir)
        a = hawknb.triage(full, progress=False)
        t2 = time.perf_counter()
        b = hawknb.triage(prof, progress=False)
        t3 = time.perf_counter()
        va, vb = a.verdict.to_dict(), b.verdict.to_dict()
        diffs = [k for k in (*FIELDS, "layer") if va.get(k) != vb.get(k)]
        if abs(float(va.get("confidence") or 0) - float(vb.get("confidence") or 0)) > 1e-9:
            diffs.append("confidence")
        feat = b.finding("features")
        row: dict[str, Any] = {
            "kind": kind,
            "seed": seed,
            "diffs": diffs,
            "full": {k: va.get(k) for k in (*FIELDS, "layer", "confidence")},
            "profile": {k: vb.get(k) for k in (*FIELDS, "layer", "confidence")},
            "profile_s": t1 - t0,
            "triage_full_s": t2 - t1,
            "triage_profile_s": t3 - t2,
        }
        if feat is not None and feat.result is not None:
            row["drift_source"] = feat.result.drift_source
            row["drift"] = _drift_misses(full, prof, feat.result)
        return row


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| kind | cases | identical verdicts | features steps on sketches | drift misses (KS / PSI / W1) | max KS gap |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in sorted({r["kind"] for r in rows}):
        rs = [r for r in rows if r["kind"] == kind]
        dr = [r["drift"] for r in rs if "drift" in r]
        misses = " / ".join(
            str(sum(d[f"{k}_misses"] for d in dr)) for k in ("ks", "psi", "wasserstein")
        )
        sk = sum(1 for r in rs if r.get("drift_source", "rows") != "rows")
        gap = max((d["ks_max_gap"] for d in dr), default=0.0)
        same = sum(1 for r in rs if not r["diffs"])
        lines.append(f"| {kind} | {len(rs)} | {same} | {sk} | {misses} | {gap:.4f} |")
    return "\n".join(lines)


def main() -> int:
    from hawknb.simulate.truth import INCIDENT_KINDS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-24")
    ap.add_argument("--kinds", default=",".join(INCIDENT_KINDS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--bucket", default="1h")
    ap.add_argument("--cache", help="keep simulated workspaces here and reuse them")
    ap.add_argument("--jsonl", help="append one JSON line per scenario here as it finishes")
    ap.add_argument("--out", help="write the markdown table here")
    args = ap.parse_args()
    todo = [(k, s) for s in _seeds(args.seeds) for k in args.kinds.split(",")]
    rows = []
    with ProcessPoolExecutor(
        max_workers=args.jobs,
        mp_context=multiprocessing.get_context("spawn"),  # see triage_accuracy.SPAWN
    ) as pool:
        futs = [pool.submit(run_one, k, s, args.cache, args.bucket) for k, s in todo]
        for fut in as_completed(futs):
            row = fut.result()
            rows.append(row)
            print(row["kind"], row["seed"], row["diffs"] or "same", row.get("drift"), flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(row, default=str) + "\n")
    text = _table(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 1 if any(r["diffs"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
