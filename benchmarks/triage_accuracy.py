"""Triage accuracy against the simulator's ground truth.

For every incident kind and seed: simulate a workspace (truth written outside it), run
`hawknb.triage` through the public API only, and score each verdict field against the truth:
cause, model and snapshot exact; feature recall@5; root cause at rank 1; layer exact.
`none` scenarios count as right when answered `none` or with confidence below 0.3.

Seeds are split: the tuning seeds (0-4 by default) were looked at while the triage was built;
the held-out seeds (1000+) were not. Both are reported.

    python benchmarks/triage_accuracy.py                      # 10 seeds x 6 kinds
    python benchmarks/triage_accuracy.py --seeds 1000-1009 --kinds bad_snapshot
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from hawknb.simulate.truth import INCIDENT_KINDS

KINDS = INCIDENT_KINDS
#: worker processes start fresh: a forked child of a process whose polars or torch thread
#: pools have already run can deadlock on a lock held by a thread that was not copied
SPAWN = multiprocessing.get_context("spawn")


def score(verdict: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Score one verdict; a field the truth leaves empty is not scored (None)."""
    out: dict[str, Any] = {}
    if truth["cause"] == "none":
        ok = verdict["cause"] == "none" or float(verdict.get("confidence") or 0) < 0.3
        out.update(cause=ok, model=ok, snapshot=ok, features=None, root=None, layer=None)
        out["full"] = ok
        return out
    out["cause"] = verdict["cause"] == truth["cause"]
    affected = set(truth.get("affected_models") or []) | {truth["model"]}
    out["model"] = verdict.get("model") in affected
    out["snapshot"] = verdict.get("snapshot") == truth.get("snapshot")
    tf = list(truth.get("features") or [])
    need = 0.6
    if verdict.get("model") != truth["model"] and truth.get("downstream_features"):
        # a shared upstream break degrades several models; when the verdict names another
        # affected model, its culprit features are the root's downstream features it reads.
        # The truth does not rank those by their effect on that model (some barely matter to
        # it), so half of them in the top 5 counts
        used = set((truth.get("model_features") or {}).get(verdict.get("model"), []))
        tf = [f for f in truth["downstream_features"] if f in used] or tf
        need = 0.5
    if tf:
        top = list(verdict.get("features") or [])[:5]
        out["recall5"] = len(set(top) & set(tf)) / min(5, len(tf))
        out["features"] = out["recall5"] >= need
    else:
        out["features"] = None
    tu = list(truth.get("upstream") or [])
    out["root"] = (list(verdict.get("upstream") or [])[:1] == tu[:1]) if tu else None
    out["layer"] = (verdict.get("layer") == truth["layer"]) if truth.get("layer") else None
    out["full"] = all(
        out[k]
        for k in ("cause", "model", "snapshot", "features", "root", "layer")
        if out[k] is not None
    )
    return out


def run_one(kind: str, seed: int, cache: str | None = None) -> dict[str, Any]:
    """Simulate (or reuse from ``cache``) one scenario, triage it and score the verdict."""
    from hawknb.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        where = (Path(cache) if cache else Path(tmp)) / f"{kind}_{seed}"
        t0 = time.perf_counter()
        if not (where / "truth.json").exists():
            # the truth is written last: a scenario with a truth file is complete
            simulate(where / "ws", incident=kind, seed=seed, truth_path=where / "truth.tmp")
            (where / "truth.tmp").rename(where / "truth.json")
        row = run_dir(str(where), kind, seed)
        row["simulate_s"] = time.perf_counter() - t0 - row["triage_s"]
        return row


TRUTH_KEYS = ("cause", "model", "snapshot", "features", "upstream", "layer", "experiment", "onset")


def run_dir(where: str, kind: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Triage one generated scenario: a folder with the workspace (``ws/`` or ``workspace/``)
    and ``truth.json`` beside it (any generator that writes the simulator's truth keys)."""
    import hawknb

    base = Path(where)
    ws_dir = base / "ws" if (base / "ws").is_dir() else base / "workspace"
    truth = json.loads((base / "truth.json").read_text())
    t1 = time.perf_counter()
    inv = hawknb.triage(hawknb.Workspace.open(ws_dir), progress=False)
    t2 = time.perf_counter()
    snaps = ws_dir / "snapshots"
    truth["model_features"] = {
        p.name: json.loads((p / "features.json").read_text())
        for p in (snaps.iterdir() if snaps.is_dir() else [])
        if (p / "features.json").exists()
    }
    verdict = inv.verdict.to_dict()
    hyp = inv.finding("hypotheses")
    return {
        **evidence_of(inv),
        "kind": kind or truth.get("kind") or truth["cause"],
        "seed": seed if seed is not None else truth.get("seed", -1),
        "where": str(base),
        "verdict": verdict,
        "support": hyp.evidence["hypotheses"][0]["support"] if hyp else verdict["confidence"],
        "truth": {k: truth.get(k) for k in TRUTH_KEYS},
        "score": score(verdict, truth),
        "triage_s": t2 - t1,
    }


def evidence_of(inv: Any) -> dict[str, Any]:
    """What a run records for benchmarks/fit_calibration.py besides the verdict: the evidence
    of an incident the walk had (what a `none` verdict's confidence is fitted on), the
    supports of the hypotheses it weighed and the share of labels its window had."""
    from hawknb.triage.calibration import none_evidence
    from hawknb.triage.results import HypothesesResult

    hyps = inv.get(HypothesesResult)
    weighed = [
        (h.cause, round(h.support, 4), round(h.window, 4))
        for h in (hyps.hypotheses if hyps else [])
    ]
    verdict = inv.finding("verdict")
    seen = verdict.evidence.get("labels_seen") if verdict is not None else None
    best = hyps.hypotheses[0] if hyps and hyps.hypotheses else None
    return {
        "evidence": none_evidence(inv).as_dict(),
        "hypotheses": weighed,
        "labels_seen": seen,
        "mechanism": best.mechanism if best is not None else None,
    }


def right(row: dict[str, Any]) -> bool:
    """Whether the verdict is right in what its confidence is about: the cause, and for a real
    incident the model (a `none` incident is right only when answered `none`)."""
    v, t = row["verdict"], row["truth"]
    if t["cause"] == "none":
        return v["cause"] == "none"
    return bool(row["score"]["cause"] and row["score"]["model"])


def reliability(
    rows: list[dict[str, Any]], bins: int = 5, causes_only: bool = False
) -> tuple[str, float]:
    """A reliability table (confidence bins: mean confidence vs share right) and the expected
    calibration error (the bins' |share right - mean confidence| weighted by their size),
    over every verdict: a `none` verdict's confidence is the probability that "no cause
    found" is right. ``causes_only`` keeps the verdicts that name a cause (the number
    reported before `none` verdicts were calibrated, kept for continuity)."""
    lines = [
        "| confidence | n | mean confidence | share right |",
        "|---|---|---|---|",
    ]
    if causes_only:
        rows = [r for r in rows if r["verdict"]["cause"] != "none"]
    ece, n = 0.0, len(rows)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        rs = [
            r
            for r in rows
            if lo <= r["verdict"]["confidence"] < hi
            or (b == bins - 1 and r["verdict"]["confidence"] >= 1.0)
        ]
        if not rs:
            lines.append(f"| {lo:.1f}-{hi:.1f} | 0 | – | – |")
            continue
        conf = sum(r["verdict"]["confidence"] for r in rs) / len(rs)
        acc = sum(right(r) for r in rs) / len(rs)
        ece += len(rs) / n * abs(acc - conf)
        lines.append(f"| {lo:.1f}-{hi:.1f} | {len(rs)} | {conf:.2f} | {acc:.2f} |")
    return "\n".join(lines), ece


def calibration_report(rows: list[dict[str, Any]], group: Callable[[dict[str, Any]], str]) -> str:
    """The expected calibration error per data set (``group`` names a row's) and overall,
    over all verdicts and, for continuity, over those that name a cause, then the
    reliability table over all verdicts and one for `none` verdicts alone."""
    lines = [
        "| data | verdicts | right | ECE (all verdicts) | naming a cause | ECE (cause only) "
        "| `none` right | `none` mean confidence |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = sorted({group(r) for r in rows})
    for name in [*names, "all"] if len(names) > 1 else names:
        rs = [r for r in rows if name in ("all", group(r))]
        cause = [r for r in rs if r["verdict"]["cause"] != "none"]
        nones = [r for r in rs if r["verdict"]["cause"] == "none"]
        ece = reliability(rs)[1]
        cece = f"{reliability(cause)[1]:.3f}" if cause else "–"
        mean = sum(r["verdict"]["confidence"] for r in nones) / len(nones) if nones else None
        lines.append(
            f"| {name} | {len(rs)} | {sum(map(right, rs))} | {ece:.3f} | {len(cause)} | {cece} "
            f"| {sum(map(right, nones))}/{len(nones)} | "
            + (f"{mean:.2f} |" if mean is not None else "– |")
        )
    table, _ = reliability(rows)
    nones = [r for r in rows if r["verdict"]["cause"] == "none"]
    lines += ["", "All verdicts:", "", table]
    if nones:
        lines += ["", "`none` verdicts alone:", "", reliability(nones)[0]]
    return "\n".join(lines)


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            seeds += list(range(int(a), int(b) + 1))
        else:
            seeds.append(int(part))
    return seeds


def table(rows: list[dict[str, Any]], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| kind | n | fully right | cause | model | snapshot | features@5 | root@1 | layer | triage s (mean) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def frac(rs: list[dict[str, Any]], key: str) -> str:
        vals = [r["score"][key] for r in rs if r["score"].get(key) is not None]
        return f"{sum(vals)}/{len(vals)}" if vals else "–"

    for kind in [*KINDS, "all"]:
        rs = [r for r in rows if kind in ("all", r["kind"])]
        if not rs:
            continue
        secs = sum(r["triage_s"] for r in rs) / len(rs)
        lines.append(
            f"| {kind} | {len(rs)} | {frac(rs, 'full')} | {frac(rs, 'cause')} | {frac(rs, 'model')} | "
            f"{frac(rs, 'snapshot')} | {frac(rs, 'features')} | {frac(rs, 'root')} | {frac(rs, 'layer')} | {secs:.1f} |"
        )
    return "\n".join(lines)


def split_of(row: dict[str, Any]) -> str:
    """The seed split a simulator row belongs to (tuning 0-999, held-out 1000 and up)."""
    return "simulator, tuning seeds" if 0 <= row["seed"] < 1000 else "simulator, held-out seeds"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-4,1000-1004", help="e.g. 0-4,1000-1004")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "triage_accuracy.md"))
    ap.add_argument("--json", help="also write every verdict and score here")
    ap.add_argument(
        "--cache", help="keep simulated workspaces here and reuse them (triage-only reruns)"
    )
    ap.add_argument(
        "--dirs",
        nargs="*",
        help="score these generated scenario folders (workspace + truth.json) instead",
    )
    ap.add_argument(
        "--reliability",
        action="store_true",
        help="also report how well the verdict confidence is calibrated (table + ECE)",
    )
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=SPAWN) as pool:
        if args.dirs:
            results = pool.map(run_dir, sorted(args.dirs))
        else:
            seeds = parse_seeds(args.seeds)
            kinds = [k for k in args.kinds.split(",") if k]
            jobs = [(k, s) for k in kinds for s in seeds]
            results = pool.map(run_one, *zip(*jobs, strict=True), [args.cache] * len(jobs))
        for r in results:
            rows.append(r)
            mark = "ok " if r["score"]["full"] else "BAD"
            print(
                f"{mark} {r['kind']:<18} seed {r['seed']:<5} -> {r['verdict']['cause']:<14} "
                f"model={r['verdict']['model']} snap={r['verdict']['snapshot']} "
                f"layer={r['verdict']['layer']} up={r['verdict']['upstream'][:1]} "
                f"conf={r['verdict']['confidence']:.2f} ({r['triage_s']:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
            if not r["score"]["full"]:
                print(f"    truth: {r['truth']}", file=sys.stderr)
    tuning = [r for r in rows if 0 <= r["seed"] < 1000]
    held = [r for r in rows if r["seed"] >= 1000 or r["seed"] < 0]
    parts = ["## Triage accuracy against simulator ground truth", ""]
    if tuning:
        parts += [table(tuning, "Tuning seeds (looked at while building)"), ""]
    if held:
        parts += [table(held, "Held-out seeds (never looked at while tuning)"), ""]
    if args.reliability:
        parts += [
            "### Calibration of the verdict confidence",
            "",
            "A verdict that names a cause is right when the cause and the model are right; a",
            "`none` verdict when there was no incident (its confidence: that nothing is wrong).",
            "",
            calibration_report(rows, split_of),
            "",
        ]
    text = "\n".join(parts)
    print(text)
    Path(args.out).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
