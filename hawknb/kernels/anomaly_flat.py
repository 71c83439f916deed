"""Flat-run novelty: a metric that repeats one value for longer than it ever has before.

Why: a stuck sensor, a process that stopped writing, a feed that went to zero all show up as
a run of identical values. None of the record signals of
:mod:`hawknb.kernels.anomaly_causal` sees it when the repeated value is an ordinary one (a
disk-write metric that is 0 most of the time and now stays 0): every single row is typical,
only the *length* of the run is new. So the run length is judged as a record, like range
novelty judges the value: a row fires when the run it ends becomes longer than every earlier
run of the series (and at least ``min_run`` rows long). Each run fires at most once, at the row
where it passes the old record, which is the earliest row at which "longer than ever" is known.

In a young series the longest earlier run understates what a full history would show (as a new
extreme does for range novelty), so while fewer than ``memory`` rows are seen the old record is
scaled by (``memory`` / rows seen)^2, the young-series widening range novelty uses.

Everything is causal: whether row i fires depends only on rows 0..i. Missing values (NaN) are
not a value: they end a run and are no run themselves, so a gap in the data is not read as a
flat metric.
"""

from __future__ import annotations

import numpy as np

_YOUNG_EXPONENT = 2.0  # as the range-novelty tolerance of anomaly_causal._range_tolerance


def flat_novelty(values: np.ndarray, *, min_run: int = 20, memory: int = 1000) -> np.ndarray:
    """Boolean per row: the row at which a run of equal values becomes the longest so far.

    A run is a maximal stretch of consecutive, equal, finite values. Run k of length L_k fires
    at its n-th row (n <= L_k) for the smallest n with n >= ``min_run`` and
    n > P_k * max(1, ``memory`` / t)^2, where P_k is the longest run that ended before run k
    started and t the row index of that n-th row.
    """
    if min_run < 1:
        raise ValueError(f"min_run must be >= 1 row, got {min_run}")
    if memory < 1:
        raise ValueError(f"memory must be >= 1 row, got {memory}")
    x = np.asarray(values, dtype=float)
    n = x.size
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    fin = np.isfinite(x)
    same = (x[1:] == x[:-1]) & fin[1:] & fin[:-1]
    starts = np.flatnonzero(np.r_[True, ~same])
    lens = np.diff(np.r_[starts, n])
    lens = np.where(fin[starts], lens, 0)  # a NaN is no run (and no record to beat)
    prev = np.r_[0, np.maximum.accumulate(lens)[:-1]].astype(float)
    cand = lens >= min_run  # only these runs can fire
    starts, lens, prev = starts[cand].astype(float), lens[cand].astype(float), prev[cand]

    def beats(k: np.ndarray) -> np.ndarray:
        t = np.fmax(starts + k - 1.0, 1.0)
        return k > prev * np.fmax(1.0, memory / t) ** _YOUNG_EXPONENT

    # the run length k grows and the young-series bar falls with k: bisect for the first k
    lo = np.fmax(np.floor(prev) + 1.0, float(min_run))
    hi = lens.copy()
    while np.any(lo < hi):
        mid = np.floor((lo + hi) / 2.0)
        ok = beats(mid)
        hi = np.where(ok & (lo < hi), mid, hi)
        lo = np.where(~ok & (lo < hi), mid + 1.0, lo)
    fires = (lo <= lens) & beats(lo)
    out[(starts[fires] + lo[fires] - 1.0).astype(np.int64)] = True
    return out


__all__ = ["flat_novelty"]
