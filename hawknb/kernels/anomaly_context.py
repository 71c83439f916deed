"""Context novelty: a short sequence of coarse value levels that the series has never shown.

Why: the record signals of :mod:`hawknb.kernels.anomaly_causal` measure *how far* a value is
from its baseline, so a change in the *pattern* of a series (a daily curve with a new shape, a
dip that stops half-way, spikes at a new density) is missed whenever each single value stays
inside the usual spread. Coarsely quantized, such a change is a sequence of levels the series
has never produced before. Novel sequences are common while a series is young and become rare
once its repertoire is known, so the rule is a record in the same spirit as the others: a row
fires when its context is new **and** no context of that length was new in the previous
``memory`` rows (or, in a young series, in the last ``young_share`` of its rows).

Everything is causal: the levels of row i use the range of rows before i, and "never seen"
means "not among rows 0..i-1".
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .anomaly_core import shift

_MAX_CODE_BITS = 62  # context codes are packed into int64


def range_levels(x: np.ndarray, bins: int) -> np.ndarray:
    """Level of each row in ``bins`` equal slices of the range of the rows before it.

    0 = below the past minimum, 1..bins = inside the range, bins + 1 = at or above the past
    maximum. The first row (no past) and a constant past give level 0 for every row.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    s = pl.Series(np.asarray(x, dtype=float))
    hi = shift(s.cum_max().to_numpy(), 1)
    lo = shift(s.cum_min().to_numpy(), 1)
    span = hi - lo
    with np.errstate(all="ignore"):
        q = np.floor(bins * (x - lo) / span)
        q = np.where(span > 0, q, -1.0)
    return (np.nan_to_num(q, nan=-1.0).clip(-1, bins) + 1).astype(np.int64)


def context_novelty(
    x: np.ndarray,
    *,
    bins: int = 8,
    orders: tuple[int, ...] = (3, 4, 5),
    memory: int = 1000,
    warmup: int = 100,
    young_share: float = 0.0,
) -> np.ndarray:
    """Boolean per row: its last-k-levels context is new and the first new one in a quiet stretch.

    The quiet stretch is ``memory`` rows, or, with ``young_share`` > 0, ``young_share`` of the
    rows seen so far when that is shorter. Checked for every ``k`` in ``orders``; a row fires
    if any order fires. The first ``warmup`` rows only build the repertoire (they count as news).

    Why no context of 2 levels: in noise, only the shortest contexts ever fall quiet, so a
    never-seen pair of levels (a jump between two slices the series never jumped between)
    turns up by chance in iid noise, and a jump is what the point signal already judges.
    Contexts of 3 or more levels fall quiet only in a series with a regular repertoire (a
    daily curve), which is where a new shape is news. On NAB's tune half, dropping order 2
    raised the 2-fold cross-validated score on all of 5 splits (75.7 -> 76.2 on average).

    Why the young share: a series shorter than ``memory`` rows can never be quiet for
    ``memory`` rows, so a fixed stretch switches the signal off for short series. New contexts
    turn up at a rate that falls with the age of the series (about 1/age, like new extremes),
    so "no news during the last 80% of the series' life" is as rare at row 500 as "no news
    in 1000 rows" is at row 1250: the share keeps the bar equally strict at every age.
    """
    x = np.asarray(x, dtype=float)
    if not orders or min(orders) < 1:
        raise ValueError(f"orders must be positive context lengths, got {orders!r}")
    base = bins + 2
    if max(orders) * np.log2(base) > _MAX_CODE_BITS:
        raise ValueError(f"orders up to {max(orders)} with {bins} bins overflow a 64-bit code")
    if memory < 1:
        raise ValueError(f"memory must be >= 1 row, got {memory}")
    if not 0.0 <= young_share < 1.0:
        raise ValueError(f"young_share must be in [0, 1), got {young_share}")
    n = x.size
    levels = range_levels(x, bins)
    fire = np.zeros(n, dtype=bool)
    idx = np.arange(n, dtype=float)
    quiet = np.fmin(float(memory), young_share * idx) if young_share > 0 else float(memory)
    code = np.zeros(n, dtype=np.int64)
    for k in range(1, max(orders) + 1):
        lagged = np.zeros(n, dtype=np.int64)
        if k <= n:  # a series shorter than the context has no row that sees k levels
            lagged[k - 1 :] = levels[: n - k + 1]
        code = code * base + lagged
        if k not in orders:
            continue
        _, first = np.unique(code, return_index=True)  # first occurrence = new at that row
        new = np.zeros(n)
        new[first] = 1.0  # warm-up rows count as recent news; they only may not fire
        last = shift(np.maximum.accumulate(np.where(new > 0, idx, -np.inf)), 1, -np.inf)
        fire |= (new > 0) & (idx - last > quiet)
    fire[:warmup] = False
    return fire


__all__ = ["context_novelty", "range_levels"]
