"""Root cause on real incidents: hawknb's root_cause on the PetShop benchmark, against the data
set's own traversal method and the largest-anomaly baselines, in the same run.

The data is not shipped (see benchmarks/rca/petshop.py): pass the ``dataset`` folder of a
checkout of amazon-science/petshop-root-cause-analysis. Splits: the data set's train issues
all share one root (PetSearch), so they cannot tune anything alone; ``tune`` is the
low_traffic scenario (train and test) with high_traffic's train issues, ``held`` is
high_traffic's test issues, which were not looked at while changing the kernel (the
temporal scenarios' normal periods were missing from the checkout used). top-k: the true root among
the first k ranked nodes (``root_cause`` counts a candidate's aliases, ``strict`` only its
representative node); a method that returns nothing misses.

    .venv/bin/python benchmarks/rca_petshop.py --data /path/to/petshop/dataset
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.rca import baselines as b
from benchmarks.rca.petshop import SCENARIOS, case_of, load_scenario, traversal_scores
from hawknb.kernels.lineage import root_cause

METHODS = (
    "root_cause",
    "root_cause strict",
    "root_cause, target metric only",
    "root_cause, magnitude=True",
    "max abs z",
    "traversal (|z| >= 3)",
    "PetShop traversal (published method)",
)


def _kernel(case, **kw) -> tuple[list[set], list[set], object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = root_cause(case.graph, case.stats, case.targets, case.onset, mode=case.mode, **kw)
    return [set(c.nodes) for c in res.candidates], [{c.node} for c in res.candidates], res


def _hit(ranked: list[set], root: str, k: int) -> float:
    return float(any(root in g for g in ranked[:k]))


def evaluate(scen, issue) -> dict[str, tuple[float, float]]:
    """method -> (top-1, top-3) on one issue."""
    case = case_of(scen, issue)
    groups, strict, res = _kernel(case)
    only = case_of(scen, issue, metrics=(issue.metric,))
    z = b.max_abs_z(case, res.window, res.reference)
    ranks = {
        "root_cause": groups,
        "root_cause strict": strict,
        "root_cause, target metric only": _kernel(only)[0],
        "root_cause, magnitude=True": _kernel(case, magnitude=True)[0],
        "max abs z": [{n} for n in b.rank_max_z(case, z)],
        "traversal (|z| >= 3)": [{n} for n in b.rank_traversal(case, z)],
        "PetShop traversal (published method)": [{n} for n in traversal_scores(scen, issue)],
    }
    return {m: (_hit(r, issue.root, 1), _hit(r, issue.root, 3)) for m, r in ranks.items()}


def _table(title: str, rows: dict[str, list]) -> list[str]:
    lines = [f"### {title}", "", "| method | top-1 | top-3 | issues |", "|---|---|---|---|"]
    for m in METHODS:
        v = np.array(rows[m])
        lines.append(f"| {m} | {v[:, 0].mean():.2f} | {v[:, 1].mean():.2f} | {len(v)} |")
    return [*lines, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="the PetShop dataset/ folder")
    ap.add_argument("--split", choices=("tune", "held", "both"), default="both")
    ap.add_argument("--out", type=Path, default=None, help="write the tables here (markdown)")
    ap.add_argument("--verbose", action="store_true", help="print each issue's hits")
    args = ap.parse_args()
    t0 = time.perf_counter()
    by: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    skipped = []
    for name in SCENARIOS:
        loaded = load_scenario(args.data, name)
        if loaded is None:
            skipped.append(name)
            continue
        scen, issues = loaded
        for issue in issues:
            split = "held" if (name, issue.split) == ("high_traffic", "test") else "tune"
            if args.split != "both" and split != args.split:
                continue
            hits = evaluate(scen, issue)
            if args.verbose:
                print(issue.name, issue.metric, issue.root, {m: h[0] for m, h in hits.items()})
            for key in ((split, "all"), (split, f"{name}, {issue.split}, {issue.metric}")):
                for m, h in hits.items():
                    by[key][m].append(h)
    lines = ["## Root cause on PetShop (real incidents), same run", ""]
    if skipped:
        lines += [
            f"Scenarios without their normal period in this checkout: {', '.join(skipped)}",
            "",
        ]
    for split in ("held", "tune"):
        keys = sorted(k for k in by if k[0] == split)
        for key in sorted(keys, key=lambda k: k[1] != "all"):
            label = "held-out" if split == "held" else "tuning"
            lines += _table(f"{label}: {key[1]}", by[key])
    lines.append(f"Run time {time.perf_counter() - t0:.0f} s.")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
