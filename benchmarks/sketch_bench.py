"""Side-by-side: hawknb's KLL sketch vs Apache DataSketches' KLL vs exact numpy quantiles.

Measures, on the same data: time to sketch n values (one bulk update and a stream of small
batches), time to merge many per-partition sketches, the observed maximum normalized rank error
of 1001 quantile queries, the bound each sketch states, and the serialized size. Prints a table
(ns/value of the bulk update, us per merged sketch, measured vs stated rank error) and the ratios
hawknb / peer. The result decides which sketch profiles use (``hawknb/kernels/kll.py``): the
peer unless hawknb's own is measured better here.

    .venv/bin/python benchmarks/sketch_bench.py [--n 1000000] [--k 200] [--parts 100]

DataSketches is optional (``pip install datasketches``); without it only numpy is compared.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hawknb.kernels.sketch import QuantileSketch

try:
    import datasketches as ds
except ImportError:  # pragma: no cover - optional peer
    ds = None

QS = np.linspace(0.0, 1.0, 1001)


def _timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _rank_error(sorted_x: np.ndarray, answers: np.ndarray) -> float:
    """Max distance of q from the true rank interval of each answer, normalized."""
    n = sorted_x.size
    lo = np.searchsorted(sorted_x, answers, side="left") / n
    hi = np.searchsorted(sorted_x, answers, side="right") / n
    return float(np.max(np.maximum(lo - QS, 0) + np.maximum(QS - hi, 0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--parts", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1000, help="batch size of the streaming test")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=args.n)
    xs = np.sort(x)
    parts = np.array_split(x, args.parts)
    rows: dict[str, dict[str, float]] = {}

    # hawknb
    t_bulk, sk = _timed(lambda: QuantileSketch(args.k).update(x))

    def stream_h() -> QuantileSketch:
        s = QuantileSketch(args.k)
        for i in range(0, x.size, args.batch):
            s.update(x[i : i + args.batch])
        return s

    t_stream, sk_s = _timed(stream_h, 1)
    hparts = [QuantileSketch(args.k, seed=i).update(p) for i, p in enumerate(parts)]

    def merge_h() -> QuantileSketch:
        m = QuantileSketch(args.k)
        for p in hparts:
            m.merge(p)
        return m

    t_merge, merged = _timed(merge_h)
    t_q, ans = _timed(lambda: merged.quantile(QS))
    rows["hawknb KLL"] = {
        "bulk_s": t_bulk,
        "stream_s": t_stream,
        "merge_s": t_merge,
        "query_s": t_q,
        "err_bulk": _rank_error(xs, sk.quantile(QS)),
        "err_stream": _rank_error(xs, sk_s.quantile(QS)),
        "err_merged": _rank_error(xs, ans),
        "bound_99": merged.quantile_error_bound(0.01),
        "bytes": len(merged.to_bytes()),
    }

    if ds is not None:

        def bulk_d() -> Any:
            s = ds.kll_doubles_sketch(args.k)
            s.update(x)
            return s

        t_bulk, dsk = _timed(bulk_d)

        def stream_d() -> Any:
            s = ds.kll_doubles_sketch(args.k)
            for i in range(0, x.size, args.batch):
                s.update(x[i : i + args.batch])
            return s

        t_stream, dsk_s = _timed(stream_d, 1)
        dparts = []
        for p in parts:
            s = ds.kll_doubles_sketch(args.k)
            s.update(p)
            dparts.append(s)

        def merge_d() -> Any:
            m = ds.kll_doubles_sketch(args.k)
            for p in dparts:
                m.merge(p)
            return m

        t_merge, dm = _timed(merge_d)
        t_q, dans = _timed(lambda: np.asarray(dm.get_quantiles(QS)))
        rows["datasketches KLL"] = {
            "bulk_s": t_bulk,
            "stream_s": t_stream,
            "merge_s": t_merge,
            "query_s": t_q,
            "err_bulk": _rank_error(xs, np.asarray(dsk.get_quantiles(QS))),
            "err_stream": _rank_error(xs, np.asarray(dsk_s.get_quantiles(QS))),
            "err_merged": _rank_error(xs, dans),
            "bound_99": ds.kll_doubles_sketch.get_normalized_rank_error(args.k, False),
            "bytes": len(dm.serialize()),
        }

    t_exact, ex = _timed(lambda: np.quantile(x, QS, method="inverted_cdf"))
    rows["numpy exact"] = {
        "bulk_s": t_exact,
        "stream_s": float("nan"),
        "merge_s": float("nan"),
        "query_s": t_exact,
        "err_bulk": 0.0 if _rank_error(xs, ex) < 1e-12 else _rank_error(xs, ex),  # exact
        "err_stream": float("nan"),
        "err_merged": float("nan"),
        "bound_99": 0.0,
        "bytes": x.nbytes,
    }

    for r in rows.values():
        r["ns/value"] = r["bulk_s"] / args.n * 1e9
        r["merge_us"] = r["merge_s"] / args.parts * 1e6
    cols = list(next(iter(rows.values())))
    print(f"n={args.n:,} k={args.k} parts={args.parts} stream batch={args.batch}")
    print(f"{'':18s}" + "".join(f"{c:>12s}" for c in cols))
    for name, r in rows.items():
        print(f"{name:18s}" + "".join(f"{r[c]:12.4g}" for c in cols))
    h = rows["hawknb KLL"]
    for peer in [p for p in rows if p != "hawknb KLL"]:
        ratios = {
            c: h[c] / rows[peer][c]
            for c in cols
            if np.isfinite(rows[peer][c]) and rows[peer][c] > 0 and np.isfinite(h[c])
        }
        print(f"ratio hawknb/{peer}: " + ", ".join(f"{c} {v:.2f}x" for c, v in ratios.items()))


if __name__ == "__main__":
    main()
