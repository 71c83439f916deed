"""Feature drift between two windows from a profile's sketches, with the error it carries.

A window's distribution is the :class:`~hawknb.profile.union.Union` of its buckets' KLL
sketches (deterministic, unlike a DataSketches merge; exact where each bucket's sketch is).
KS: the largest gap between the two windows' CDFs, compared at the quantiles of both;
``ks_error`` is the two windows' stated double-sided rank errors (99% confidence per sketch)
plus the grid spacing. PSI: the reference sketch's quantiles are
the bin edges (as in ``kernels.drift``), each bin's share is read from both sketches' CDFs;
``psi_error`` is the first-order change of PSI when every share moves by its sketch's rank
error and one value. Wasserstein-1: the mean gap of the two quantile functions on a grid, in reference-IQR
units (as ``kernels.drift.wasserstein``); ``wasserstein_error`` is the width of the band each
quantile function can lie in given its rank error, plus the grid's discretization. Mean
shift: exact means (from the moments of finite values) over the reference's robust scale
read off its sketch. Null and non-finite rates are exact (from counts).

Where every bucket's sketch kept all its values (a bucket of at most ~k values), the union is
the data itself and the numbers are ``kernels.drift.distances`` of those values, exactly as
from the rows, with errors 0.

Windows are [start, end) rounded down to bucket boundaries, so a bucket counts in the window
that holds its start, and a bucket cut by a window's end belongs to the next window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from ..kernels import kll
from ..kernels.drift import DEFAULT_BINS, PSI_EPS, distances, psi_bins, psi_from_counts
from ..workspace import contract as c
from .schema import Profile
from .union import Union

_GRID = np.linspace(0.0, 1.0, 1001)
#: midpoints of 1000 equal quantile slices: the points the W1 integral and MAD are read at
_MIDS = (np.arange(1000) + 0.5) / 1000


#: the columns of ``Workspace.feature_drift`` (before its ``source``), from rows or sketches
DRIFT_SCHEMA: dict[str, pl.DataType] = {
    "feature": pl.String(),
    "n_reference": pl.Int64(),
    "n_current": pl.Int64(),
    "ks": pl.Float64(),
    "ks_error": pl.Float64(),
    "psi": pl.Float64(),
    "psi_error": pl.Float64(),
    "wasserstein": pl.Float64(),
    "wasserstein_error": pl.Float64(),
    "mean_shift": pl.Float64(),
    "null_rate_reference": pl.Float64(),
    "null_rate_current": pl.Float64(),
    "nonfinite_rate_reference": pl.Float64(),
    "nonfinite_rate_current": pl.Float64(),
}


@dataclass(frozen=True)
class _Window:
    """One feature's merged sketch and exact counts/moments over one window."""

    sketch: Any  # None when the window has no finite value of the feature
    n: int  # non-null values
    n_fin: int  # finite values
    mean: float  # of the finite values
    m2: float


def _floor(prof: Profile, w: tuple[datetime, datetime]) -> tuple[Any, Any]:
    bucket = prof.meta.get("bucket")
    if not bucket:
        return w
    return tuple(pl.select(pl.lit(t).dt.truncate(bucket)).item() for t in w)  # type: ignore[return-value]


def _window(
    prof: Profile, model: str, features: list[str], w: tuple[datetime, datetime]
) -> tuple[dict[str, _Window], int]:
    lo, hi = _floor(prof, w)
    cond = (pl.col(c.MODEL) == model) & (pl.col(c.TS) >= lo) & (pl.col(c.TS) < hi)
    rows = int(prof.moments.filter(cond)["rows"].sum())
    feats = prof.features.filter(cond & pl.col("feature").is_in(features))
    out: dict[str, _Window] = {}
    for (f,), part in feats.group_by(["feature"]):
        blobs = [b for b in part["sketch"].to_list() if b is not None]
        sk = Union(kll.unseal(b, check=False) for b in blobs)
        n_fin = int(part["n_fin"].sum())
        fin = part.filter(pl.col("n_fin") > 0)
        mean = float((fin["mean"] * fin["n_fin"]).sum() / n_fin) if n_fin else float("nan")
        # Chan: M2 of the union = sum of M2 + sum n_i (mean_i - mean)^2
        m2 = float(fin["m2"].sum() + ((fin["mean"] - mean) ** 2 * fin["n_fin"]).sum())
        out[str(f)] = _Window(
            sk if not sk.is_empty() else None,
            int(part["n"].sum()),
            n_fin,
            mean,
            m2,
        )
    return out, rows


def _ks(r: Any, x: Any) -> tuple[float, float]:
    pts = np.unique(np.r_[r.get_quantiles(_GRID), x.get_quantiles(_GRID)])
    gap = np.abs(np.array(r.get_cdf(pts))[:-1] - np.array(x.get_cdf(pts))[:-1])
    err = kll.rank_error(r, double_sided=True) + kll.rank_error(x, double_sided=True)
    return float(gap.max()), err + 2.0 / (_GRID.size - 1)


def _psi(r: Any, x: Any) -> tuple[float, float]:
    nb = psi_bins(int(r.n), int(x.n), DEFAULT_BINS)
    edges = np.unique(np.asarray(r.get_quantiles(np.linspace(0, 1, nb + 1)[1:-1])))
    rs = np.diff(np.r_[0.0, np.array(r.get_cdf(edges, False))[:-1], 1.0])
    xs = np.diff(np.r_[0.0, np.array(x.get_cdf(edges, False))[:-1], 1.0])
    value = float(psi_from_counts(rs * r.n, xs * x.n, PSI_EPS))
    # d PSI / d share: ln(x/r) + 1 - r/x for the current share, the mirror for the reference
    rr, xx = np.maximum(rs, PSI_EPS), np.maximum(xs, PSI_EPS)
    grad = np.abs(np.log(xx / rr) + 1 - rr / xx) + np.abs(np.log(rr / xx) + 1 - xx / rr)
    # each share within its rank error, plus one value's share: the edges are values here
    # and interpolated quantiles in kernels.drift, so a value at an edge may change bins
    err = float(np.sum(grad) * (kll.rank_error(r) + kll.rank_error(x) + 1 / r.n + 1 / x.n))
    return value, err


def _quantiles(sk: Any, u: np.ndarray) -> np.ndarray:
    return np.asarray(sk.get_quantiles(np.clip(u, 0.0, 1.0)), dtype=np.float64)


def _band(sk: Any) -> float:
    """The mean width of the band the true quantile function lies in: Q(u +- rank error)."""
    e = kll.rank_error(sk)
    return float(np.mean(_quantiles(sk, _MIDS + e) - _quantiles(sk, _MIDS - e)))


def _spread(r: _Window) -> float:
    """``kernels.drift.spread_scale`` from the sketch: IQR, else std, else 1."""
    q25, q75 = _quantiles(r.sketch, np.array([0.25, 0.75]))
    if q75 > q25:
        return float(q75 - q25)
    sd = float(np.sqrt(r.m2 / r.n_fin)) if r.n_fin else 0.0
    return sd if sd > 0 else 1.0


def _wasserstein(r: _Window, x: _Window) -> tuple[float, float]:
    qr, qx = _quantiles(r.sketch, _MIDS), _quantiles(x.sketch, _MIDS)
    constant = r.sketch.get_min_value() == r.sketch.get_max_value()
    scale = 1.0 if constant else _spread(r)  # a constant reference: raw units, as the kernel
    span = sum(s.get_max_value() - s.get_min_value() for s in (r.sketch, x.sketch))
    err = _band(r.sketch) + _band(x.sketch) + span / _MIDS.size
    return float(np.mean(np.abs(qr - qx))) / scale, float(err) / scale


def _mean_shift(r: _Window, x: _Window) -> float:
    """``kernels.drift``'s mean shift: exact means over 1.4826 MAD (else IQR/1.349, else the
    std) of the reference, the MAD read off the sketch's quantile function."""
    diff = x.mean - r.mean
    if r.sketch.get_min_value() == r.sketch.get_max_value():
        return diff
    q = _quantiles(r.sketch, _MIDS)
    mad = 1.4826 * float(np.median(np.abs(q - _quantiles(r.sketch, np.array([0.5]))[0])))
    if mad > 0:
        return diff / mad
    q25, q75 = _quantiles(r.sketch, np.array([0.25, 0.75]))
    if q75 > q25:
        return diff / (float(q75 - q25) / 1.349)
    sd = float(np.sqrt(r.m2 / r.n_fin)) if r.n_fin else 0.0
    return diff / sd if sd > 0 else diff


def _distances(r: _Window | None, x: _Window | None) -> dict[str, float]:
    if r is None or x is None or r.sketch is None or x.sketch is None:
        keys = ("ks", "ks_error", "psi", "psi_error", "wasserstein", "wasserstein_error")
        return {**dict.fromkeys(keys, np.nan), "mean_shift": np.nan}
    if r.sketch.exact and x.sketch.exact:  # every value is there: the rows' own numbers
        psi, w1, ks, shift = distances(r.sketch.values(), x.sketch.values())
        zero = ("ks_error", "psi_error", "wasserstein_error")
        return {
            "ks": ks,
            "psi": psi,
            "wasserstein": w1,
            "mean_shift": shift,
            **dict.fromkeys(zero, 0.0),
        }
    ks, ks_err = _ks(r.sketch, x.sketch)
    psi, psi_err = _psi(r.sketch, x.sketch)
    w1, w1_err = _wasserstein(r, x)
    return {
        "ks": ks,
        "ks_error": ks_err,
        "psi": psi,
        "psi_error": psi_err,
        "wasserstein": w1,
        "wasserstein_error": w1_err,
        "mean_shift": _mean_shift(r, x),
    }


def _rates(w: _Window | None, rows: int) -> tuple[float | None, float | None]:
    """(null rate, non-finite rate) of a window with ``rows`` rows of the model."""
    if not rows:
        return None, None
    n, n_fin = (w.n, w.n_fin) if w is not None else (0, 0)
    return 1 - n / rows, (n - n_fin) / rows


def sketch_drift(
    prof: Profile,
    model: str,
    features: list[str],
    reference: tuple[datetime, datetime],
    current: tuple[datetime, datetime],
) -> pl.DataFrame:
    """Per feature: n_reference, n_current (finite values), ks, psi, wasserstein and their
    errors, mean_shift, null and non-finite rates of both windows."""
    rs, rrows = _window(prof, model, features, reference)
    xs, xrows = _window(prof, model, features, current)
    recs = []
    for f in features:
        r, x = rs.get(f), xs.get(f)
        null_r, nonfin_r = _rates(r, rrows)
        null_x, nonfin_x = _rates(x, xrows)
        recs.append(
            {
                "feature": f,
                "n_reference": r.n_fin if r is not None else 0,
                "n_current": x.n_fin if x is not None else 0,
                **_distances(r, x),
                "null_rate_reference": null_r,
                "null_rate_current": null_x,
                "nonfinite_rate_reference": nonfin_r,
                "nonfinite_rate_current": nonfin_x,
            }
        )
    return pl.DataFrame(recs, schema=DRIFT_SCHEMA)
