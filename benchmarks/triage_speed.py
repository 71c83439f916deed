"""Wall time of `hawknb.triage` per step on default simulated workspaces.

The issue's budget is 10 s for a default workspace on a 2-core machine. Each incident kind walks
a different branch of the tree, so one workspace per kind is timed (best of --repeat runs, after
one warm-up run that pays for imports). Also reports the activation interpreter's cost against
a plain forward pass of the same exported program on the same rows.

    python benchmarks/triage_speed.py [--repeat 3] [--seed 11] [--profile]

``--profile`` also times triage on the workspace's profile (``hawknb profile``, 1 h buckets) in
place of its serving log. The machine's load average is recorded with the table: on a shared
machine wall times scale with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from hawknb.simulate.truth import INCIDENT_KINDS

KINDS = INCIDENT_KINDS
#: the triage steps that can be timed, in walk order
STEPS = [
    "topline",
    "models",
    "snapshot",
    "features",
    "lineage",
    "weights",
    "activations",
    "training",
    "hypotheses",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "triage_speed.md"))
    ap.add_argument("--profile", action="store_true", help="also time triage on a profile")
    args = ap.parse_args()
    load = [os.getloadavg()[0]]

    import numpy as np
    import torch

    import hawknb
    from hawknb.kernels.activations import trace_activations
    from hawknb.simulate import simulate

    rows = []
    interp = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            ws_dir = Path(tmp) / kind
            t0 = time.perf_counter()
            simulate(ws_dir, incident=kind, seed=args.seed, truth_path=Path(tmp) / f"{kind}.json")
            sim_s = time.perf_counter() - t0
            ws = hawknb.Workspace.open(ws_dir)
            hawknb.triage(ws, progress=False)  # warm-up: imports, first polars plans
            best = None
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                inv = hawknb.triage(hawknb.Workspace.open(ws_dir), progress=False)
                total, cpu = time.perf_counter() - t0, time.process_time() - c0
                if best is None or total < best[0]:
                    best = (total, inv, cpu)
            total, inv, cpu = best
            steps = {f.step: f.seconds for f in inv.findings}
            prof_s = (
                _profiled(ws_dir, Path(tmp) / f"{kind}_p", args.repeat) if args.profile else None
            )
            rows.append((kind, sim_s, total, cpu, steps, inv.verdict.cause, prof_s))
            load.append(os.getloadavg()[0])
            print(f"{kind:<18} triage {total:5.2f} s  {steps}", file=sys.stderr)
            diag = inv.context.get("diagnosis")
            if diag is not None and diag.trace is not None:
                program = diag.trace.program
                x = torch.as_tensor(np.asarray(diag.trace.inputs, dtype=np.float32))
                module = program.module()
                fwd = min(_time(lambda m=module, x=x: m(x)) for _ in range(5))
                tr = min(_time(lambda p=program, x=x: trace_activations(p, x)) for _ in range(5))
                interp.append((kind, x.shape[0], len(diag.trace.nodes), fwd, tr))

    step_names = STEPS
    on_prof = " triage s on a profile |" if args.profile else ""
    lines = [
        f"# Triage speed (default simulated workspace, best of {args.repeat}, 2-core machine)",
        "",
        f"Load average (1 min) during the run: {min(load):.1f}-{max(load):.1f} on 2 cores: wall "
        "times (the step columns too) scale with it; CPU time (all threads) much less.",
        "",
        "| kind | verdict | simulate s | triage s | triage CPU s |"
        + on_prof
        + " "
        + " | ".join(step_names)
        + " |",
        "|---|---|---|---|---|" + "---|" * (len(step_names) + bool(args.profile)),
    ]
    for kind, sim_s, total, cpu, steps, cause, prof_s in rows:
        cells = " | ".join(f"{steps[s]:.2f}" if s in steps else "–" for s in step_names)
        p = f" {prof_s:.2f} |" if prof_s is not None else ""
        lines.append(f"| {kind} | {cause} | {sim_s:.1f} | {total:.2f} | {cpu:.2f} |{p} {cells} |")
    if interp:
        lines += [
            "",
            "Activation interpreter vs a plain forward pass of the same program:",
            "",
            "| kind | rows | graph nodes | forward ms | node-by-node trace ms | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for kind, n, nodes, fwd, tr in interp:
            lines.append(
                f"| {kind} | {n} | {nodes} | {fwd * 1e3:.1f} | {tr * 1e3:.1f} | {tr / fwd:.1f}x |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    return 0


def _profiled(ws_dir: Path, out: Path, repeat: int) -> float:
    """Best triage wall time on ``ws_dir`` with its serving log replaced by its profile."""
    import hawknb
    from hawknb.profile import profile

    out.mkdir()
    for item in ws_dir.iterdir():
        if item.name != "serving.parquet":
            (out / item.name).symlink_to(item.resolve())
    profile(ws_dir / "serving.parquet", bucket="1h").save(out / "profile")
    hawknb.triage(hawknb.Workspace.open(out), progress=False)  # warm-up
    return min(
        _time(lambda: hawknb.triage(hawknb.Workspace.open(out), progress=False))
        for _ in range(repeat)
    )


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
