"""Downsampling long series to what a screen can show, keeping spikes and gaps.

A year of minutely data is ~525k points but a chart is ~1-2k pixels wide; sending all points
costs megabytes and makes the browser slow. Min-max per bucket (bucket = a slice of equal time
width, roughly a pixel column) keeps the extremes of every column, so an anomaly spike cannot
vanish the way it can with striding or averaging; one non-finite point per bucket keeps gaps
visible (a NaN series is evidence, not noise).

API: ``minmax_indices(x, y, n_buckets) -> np.ndarray`` (sorted int64 indices into x/y),
``range_slice(x, lo, hi) -> (i0, i1)``.
"""

from __future__ import annotations

import numpy as np


def range_slice(x: np.ndarray, lo: float | None, hi: float | None) -> tuple[int, int]:
    """Indices ``[i0, i1)`` of the sorted array ``x`` that lie within ``[lo, hi]``."""
    i0 = 0 if lo is None else int(np.searchsorted(x, lo, side="left"))
    i1 = len(x) if hi is None else int(np.searchsorted(x, hi, side="right"))
    return i0, max(i0, i1)


def _firsts(sorted_ids: np.ndarray) -> np.ndarray:
    """Positions of the first element of each run in a non-decreasing id array (O(n))."""
    return np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])


def _lasts(sorted_ids: np.ndarray) -> np.ndarray:
    """Positions of the last element of each run in a non-decreasing id array (O(n))."""
    return np.flatnonzero(np.r_[sorted_ids[1:] != sorted_ids[:-1], True])


def minmax_indices(x: np.ndarray, y: np.ndarray, n_buckets: int) -> np.ndarray:
    """Indices to keep: per bucket of equal x-width the first, min, max and last finite point,
    plus the first non-finite point of a bucket that has one.

    ``x`` must be sorted ascending (timestamps). At most ``5 * n_buckets`` indices come back;
    when there are at most ``2 * n_buckets`` points, all of them do.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"minmax_indices: x {x.shape} and y {y.shape} must be 1-d and equal")
    if n_buckets < 1:
        raise ValueError(f"minmax_indices: n_buckets must be >= 1, got {n_buckets}")
    n = len(x)
    if n <= 2 * n_buckets:
        return np.arange(n, dtype=np.int64)
    if np.any(np.diff(x) < 0):
        raise ValueError("minmax_indices: x must be sorted ascending. Fix: sort by ts first.")
    span = x[-1] - x[0]
    if span <= 0:
        bucket = np.zeros(n, dtype=np.int64)
    else:
        bucket = np.minimum(((x - x[0]) / span * n_buckets).astype(np.int64), n_buckets - 1)
    finite = np.isfinite(y)
    # x is sorted, so buckets are contiguous segments: per-segment reductions with reduceat
    # (a few O(n) passes; no sort of the values)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    lengths = np.diff(np.r_[starts, n])
    seg = np.repeat(np.arange(len(starts)), lengths)
    keep = [np.zeros(0, dtype=np.int64)]
    y_lo = np.where(finite, y, np.inf)
    y_hi = np.where(finite, y, -np.inf)
    for vals, red in ((y_lo, np.minimum), (y_hi, np.maximum)):
        ext = red.reduceat(vals, starts)
        cand = np.flatnonzero((vals == ext[seg]) & finite)
        keep.append(cand[_firsts(seg[cand])])
    fi = np.flatnonzero(finite)
    if len(fi):
        fseg = seg[fi]
        keep += [fi[_firsts(fseg)], fi[_lasts(fseg)]]
    ni = np.flatnonzero(~finite)
    if len(ni):
        keep.append(ni[_firsts(seg[ni])])
    return np.unique(np.concatenate(keep))
