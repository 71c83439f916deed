"""Drift of many features: hawknb against its peers, in one process, rounds interleaved.

Contenders on the same float32 columns (current window vs reference window):

* ``hawknb drift``: :func:`hawknb.kernels.drift.drift` -- both samples counted on a fine grid
  over the reference's bulk, exact KS and PSI, W1 within 1e-4 IQR (sorting neither sample),
  its passes over the values compiled by numba, columns on a thread pool (``hawknb drift,
  one thread``: the same on one thread, to show what the second thread buys; ``numpy
  passes (before)``: the same with the numpy passes it had before numba, same bits);
* ``numpy sort-based``: the same kernel's exact path (a sort of both samples per column),
  same threads;
* ``fine-grid binning``: np.histogram of both samples on a uniform 20,000-cell grid, KS and
  W1 from the binned CDFs (approximate), same threads;
* ``scipy ks_2samp loop``: KS statistic and p-value per column;
* ``one pass``: ``.sum()`` of every column of both windows (the memory floor).

Reported: median over rounds of each contender's time / one pass's time of the same round
(wall clock) and its process CPU time / fine-grid binning's (CPU time is steadier on a
shared machine: other processes inflate the wall clock, not it), plus hawknb's agreement with scipy (largest KS difference; columns where ``p < alpha``
flags agree at several alphas, hawknb's p from its KS with scipy's own formula) and with
the exact sort-based path (PSI, W1, mean shift), each contender's voluntary context switches
(threads waiting for the GIL), and where one column's CPU time goes (the float64 sums, the
grid and both counts, the rest). On a shared machine run it under real-time priority (the
scheduling is reported), when no other real-time job holds a core:

    chrt -f 1 .venv/bin/python benchmarks/drift_bench.py [--features 100] [--rows 1000000] \\
        [--wait-quiet 2]
    chrt -f 1 .venv/bin/python benchmarks/drift_bench.py --features 20 --rows 10000000 \\
        --ref 2000000 --skip "numpy sort-based" "scipy ks_2samp loop" --agree-features 5 \\
        --out benchmarks/results/drift_10m.md
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from hawknb.kernels import drift as drift_module
from hawknb.kernels import drift_binned
from hawknb.kernels.drift import drift

#: rows that take the binned path (a warm-up before the timed rounds)
BINNED_ROWS = drift_module.BINNED_FROM
#: significance levels at which hawknb's KS flags are compared with scipy's
ALPHAS = (0.05, 0.01, 0.001)


def make(features: int, rows: int, ref: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mixed distributions (normal, exponential, lognormal, integer counts, point mass at 0);
    every third feature shifted a little in the current window."""
    rng = np.random.default_rng(seed)
    cols_r, cols_c = {}, {}
    for i in range(features):
        kind, shift = i % 5, 0.05 * (i % 3 == 0)
        for cols, n, s in ((cols_r, ref, 0.0), (cols_c, rows, shift)):
            if kind == 0:
                x = rng.normal(s, 1, n)
            elif kind == 1:
                x = rng.exponential(1 + s, n)
            elif kind == 2:
                x = rng.lognormal(s, 1.5, n)
            elif kind == 3:
                x = rng.poisson(5 + 10 * s, n).astype(float)
            else:
                x = np.where(rng.random(n) < 0.4, 0.0, rng.normal(1 + s, 1, n))
            cols[f"f{i}"] = x.astype(np.float32)
    return pl.DataFrame(cols_r), pl.DataFrame(cols_c)


def fine_grid(r: np.ndarray, c: np.ndarray, cells: int = 20_000) -> tuple[float, float]:
    lo, hi = float(min(r.min(), c.min())), float(max(r.max(), c.max()))
    hr, _ = np.histogram(r, bins=cells, range=(lo, hi))
    hc, _ = np.histogram(c, bins=cells, range=(lo, hi))
    gap = np.abs(np.cumsum(hr) / r.size - np.cumsum(hc) / c.size)
    return float(gap.max()), float(gap.sum() * (hi - lo) / cells)


def _threads(fn, cols):
    with ThreadPoolExecutor(min(len(cols), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, cols))


def contenders(ref: pl.DataFrame, cur: pl.DataFrame) -> dict:
    cols = ref.columns

    def exact():
        old = drift_module.BINNED_FROM
        drift_module.BINNED_FROM = 10**12
        try:
            return _threads(
                lambda k: drift_module.distances(ref[k].to_numpy(), cur[k].to_numpy()), cols
            )
        finally:
            drift_module.BINNED_FROM = old

    def numpy_passes():
        old = drift_binned.USE_JIT
        drift_binned.USE_JIT = False
        try:
            return drift(ref, cur)
        finally:
            drift_binned.USE_JIT = old

    def one_thread():
        old = drift_module.MAX_THREADS
        drift_module.MAX_THREADS = 1
        try:
            return drift(ref, cur)
        finally:
            drift_module.MAX_THREADS = old

    return {
        "one pass (.sum())": lambda: [
            (ref[k].to_numpy().sum(), cur[k].to_numpy().sum()) for k in cols
        ],
        "hawknb drift": lambda: drift(ref, cur),
        "hawknb drift, one thread": one_thread,
        "hawknb drift, numpy passes (before)": numpy_passes,
        "hawknb distances (numpy columns)": lambda: _threads(
            lambda k: drift_module.distances(ref[k].to_numpy(), cur[k].to_numpy()), cols
        ),
        "numpy sort-based": exact,
        "fine-grid binning": lambda: _threads(
            lambda k: fine_grid(ref[k].to_numpy(), cur[k].to_numpy()), cols
        ),
        "scipy ks_2samp loop": lambda: [
            stats.ks_2samp(ref[k].to_numpy(), cur[k].to_numpy()) for k in cols
        ],
    }


def _exact(ref: pl.DataFrame, cur: pl.DataFrame) -> dict[str, tuple[float, ...]]:
    old = drift_module.BINNED_FROM
    drift_module.BINNED_FROM = 10**12
    try:
        cols = ref.columns
        out = _threads(lambda k: drift_module.distances(ref[k].to_numpy(), cur[k].to_numpy()), cols)
        return dict(zip(cols, out, strict=True))
    finally:
        drift_module.BINNED_FROM = old


def _iqr(x: np.ndarray) -> float:
    q75, q25 = np.quantile(x.astype(np.float64), [0.75, 0.25])
    return float(q75 - q25)


def _scipy_p(d: float, n: int, m: int) -> float:
    """scipy's ks_2samp p-value for a statistic (its 'asymp' method, which it picks for
    samples this large): a flag drawn from hawknb's KS with it is scipy's flag iff the
    statistics agree."""
    big, small = max(n, m), min(n, m)
    return float(
        np.clip(stats.distributions.kstwo.sf(d, np.round(big * small / (big + small))), 0, 1)
    )


def agreement(ref: pl.DataFrame, cur: pl.DataFrame, sort_check: bool) -> list[str]:
    """hawknb's numbers against scipy's ks_2samp (statistic and flags) and the exact
    sort-based path (PSI, W1, mean shift); the fine-grid peer's KS and W1 errors too."""
    rep = drift(ref, cur)
    worst, same = 0.0, {a: 0 for a in ALPHAS}
    flagged = {a: 0 for a in ALPHAS}
    for k in ref.columns:
        sc = stats.ks_2samp(ref[k].to_numpy(), cur[k].to_numpy())
        d = rep[k].ks
        p = _scipy_p(d, ref.height, cur.height)
        worst = max(worst, abs(d - sc.statistic))
        for a in ALPHAS:
            same[a] += (p < a) == (sc.pvalue < a)
            flagged[a] += sc.pvalue < a
    f = len(ref.columns)
    lines = [
        f"hawknb KS vs scipy ks_2samp: largest difference {worst:.2e}; flags p < alpha the "
        "same as scipy's on "
        + ", ".join(f"{same[a]}/{f} (alpha {a}, scipy flags {flagged[a]})" for a in ALPHAS)
        + " (hawknb's p from its KS with scipy's own formula for samples this size)."
    ]
    if sort_check:
        ex = _exact(ref, cur)
        dp = max(abs(rep[k].psi - ex[k][0]) for k in ref.columns)
        dw = max(abs(rep[k].wasserstein - ex[k][1]) for k in ref.columns)
        dk = max(abs(rep[k].ks - ex[k][2]) for k in ref.columns)
        dm = max(abs(rep[k].mean_shift - ex[k][3]) / max(abs(ex[k][3]), 1e-12) for k in ref.columns)
        grid = {k: fine_grid(ref[k].to_numpy(), cur[k].to_numpy()) for k in ref.columns}
        gk = max(abs(grid[k][0] - ex[k][2]) for k in ref.columns)
        gw = max(abs(grid[k][1] / _iqr(ref[k].to_numpy()) - ex[k][1]) for k in ref.columns)
        lines.append(
            f"Against the exact sort-based path: PSI largest difference {dp:.1e}, KS {dk:.1e}, "
            f"W1 {dw:.1e} reference IQRs (bound 1e-4), mean shift {dm:.1e} relative. "
            f"The fine-grid peer's KS is off by up to {gk:.1e} and its W1 by up to {gw:.1e} "
            "reference IQRs (and it gives no PSI on reference quantiles)."
        )
    return lines


KINDS = ("normal", "exponential", "lognormal", "integer counts", "point mass at 0")


def per_kind(ref: pl.DataFrame, cur: pl.DataFrame, rounds: int) -> list[str]:
    """One column of each distribution, one thread, CPU time (``time.thread_time``: what
    other processes on a shared machine do to the wall clock does not count): hawknb's
    distances against fine-grid binning, median of per-round ratios."""
    out = ["", "| distribution (one column, CPU time) | hawknb ms | fine-grid ms | ratio |"]
    out.append("|---|---|---|---|")
    for i, kind in enumerate(KINDS[: len(ref.columns)]):
        r, c = ref[f"f{i}"].to_numpy(), cur[f"f{i}"].to_numpy()
        ts = []
        for _ in range(rounds):
            t = time.thread_time()
            drift_module.distances(r, c)
            h = time.thread_time() - t
            t = time.thread_time()
            fine_grid(r, c)
            ts.append((h, time.thread_time() - t))
        a = np.array(ts)
        ratio = np.median(a[:, 0] / a[:, 1])
        out.append(
            f"| {kind} | {np.median(a[:, 0]) * 1e3:.1f} | {np.median(a[:, 1]) * 1e3:.1f} "
            f"| {ratio:.2f}x |"
        )
    return out


def _grid_and_counts(r: np.ndarray, c: np.ndarray) -> None:
    """The binned kernel's first phase alone: the grid from a reference subsample, both
    samples' cells counted on it."""
    scale, spans, _ = drift_binned._rough_spans(r)
    refine = drift_binned._refine(r.size, c.size)
    grid = drift_binned.make_grid(
        spans, 0.8 * scale / refine, r.dtype, int(drift_binned.MAX_CELLS * refine)
    )
    drift_binned._Side(r, grid, "ref"), drift_binned._Side(c, grid, "cur")


def phases(ref: pl.DataFrame, cur: pl.DataFrame, rounds: int) -> list[str]:
    """Where one column's CPU time goes (one thread, ``time.thread_time``, medians over
    interleaved rounds): the float64 sums (the check for non-finite values and the mean
    shift), the grid and both samples' counts, and all of hawknb's distances; the rest is
    pulling the values of the cells resolved exactly and the statistics on the cells."""
    steps = {
        "one pass (.sum())": lambda r, c: (r.sum(), c.sum()),
        "float64 sums": lambda r, c: (r.sum(dtype=np.float64), c.sum(dtype=np.float64)),
        "grid + counts": _grid_and_counts,
        "all distances": drift_module.distances,
    }
    out = ["", "| distribution (one column, CPU ms) | " + " | ".join(steps) + " | rest |"]
    out.append("|---|" + "---|" * (len(steps) + 1))
    for i, kind in enumerate(KINDS[: len(ref.columns)]):
        r, c = ref[f"f{i}"].to_numpy(), cur[f"f{i}"].to_numpy()
        ts: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(rounds):
            for k, fn in steps.items():
                t = time.thread_time()
                fn(r, c)
                ts[k].append((time.thread_time() - t) * 1e3)
        med = {k: float(np.median(v)) for k, v in ts.items()}
        rest = med["all distances"] - med["float64 sums"] - med["grid + counts"]
        out.append(
            f"| {kind} | " + " | ".join(f"{v:.2f}" for v in med.values()) + f" | {rest:.2f} |"
        )
    return out


def _other_realtime() -> int:
    """Other user processes scheduled in real time right now (kernel threads, which have no
    command line, left out): one of those on a core leaves this process's two threads one
    core between them."""
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if not f.read(1):
                    continue
            n += os.sched_getscheduler(int(d)) in (os.SCHED_FIFO, os.SCHED_RR)
        except OSError:  # (gone, or not ours to read)
            continue
    return n


def _wait_quiet(seconds: float, limit: float = 120.0) -> None:
    """Wait (at most ``limit`` s) until no other real-time process has run for ``seconds``:
    on a machine shared with other sessions that benchmark under real-time priority too,
    one of theirs on a core leaves two threads one core."""
    start, quiet_since = time.monotonic(), None
    while seconds > 0 and time.monotonic() - start < limit:
        if _other_realtime():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= seconds:
            return
        time.sleep(0.1)


def _priority() -> str:
    """How the process was scheduled: under real-time priority (``chrt -f 1``) the other
    sessions' threads stay off the cores it runs on (they still share caches and memory)."""
    fifo = os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)
    return f"{'real-time' if fifo else 'normal'} priority"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ref", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], help="contenders to leave out (slow peers)")
    ap.add_argument(
        "--agree-features", type=int, default=0, help="check agreement on this many (0: all)"
    )
    ap.add_argument("--out", default="benchmarks/results/drift.md")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="before each timed run, wait until no other real-time process ran for this long",
    )
    args = ap.parse_args()
    ref, cur = make(args.features, args.rows, args.ref)
    runs = {k: v for k, v in contenders(ref, cur).items() if k not in args.skip}
    drift(ref.head(BINNED_ROWS), cur.head(BINNED_ROWS))  # numba's compile (or cache load)
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    load0 = os.getloadavg()[0]
    switches: dict[str, list[int]] = {k: [] for k in runs}
    rt_seen = []
    for _ in range(args.rounds):
        for name, fn in runs.items():
            _wait_quiet(args.wait_quiet)
            rt_seen.append(_other_realtime())
            sw = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
            c, t = time.process_time(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            switches[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - sw)
    load = os.getloadavg()[0]
    floor = np.array(times["one pass (.sum())"])
    lines = [
        "# Drift of many features: hawknb vs peers (same run, rounds interleaved)",
        "",
        f"{args.features} float32 features, {args.rows:,} current rows vs {args.ref:,} "
        f"reference rows, {args.rounds} rounds, {os.cpu_count()} cores, {_priority()}, "
        f"other real-time processes running before {sum(x > 0 for x in rt_seen)} of "
        f"{len(rt_seen)} timed runs (each run waited for {args.wait_quiet:g} s without any), "
        f"load average {load0:.1f} at the start and {load:.1f} at the end (a shared machine: "
        "absolute seconds are inflated; ratios are medians of per-round ratios; CPU time is "
        "this process's, which other processes do not inflate; context switches are the "
        "process's voluntary ones, mostly threads waiting for the GIL).",
        "",
        "| contender | median wall s | ratio to one pass | ratio to fine-grid binning "
        "| median CPU s (both threads) | CPU ratio to fine-grid | context switches |",
        "|---|---|---|---|---|---|---|",
    ]
    grid = np.array(times["fine-grid binning"])
    grid_cpu = np.array(cpu["fine-grid binning"])
    for name, ts in times.items():
        ratio = np.median(np.array(ts) / floor)
        to_grid = np.median(np.array(ts) / grid)
        cpu_ratio = np.median(np.array(cpu[name]) / grid_cpu)
        lines.append(
            f"| {name} | {np.median(ts):.3f} | {ratio:.1f}x | {to_grid:.2f}x "
            f"| {np.median(cpu[name]):.3f} | {cpu_ratio:.2f}x | {np.median(switches[name]):.0f} |"
        )
    lines += per_kind(ref, cur, max(args.rounds, 5))
    lines += phases(ref, cur, max(args.rounds, 9))
    cols = ref.columns[: args.agree_features or None]
    lines += ["", *agreement(ref[cols], cur[cols], "numpy sort-based" not in args.skip), ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
