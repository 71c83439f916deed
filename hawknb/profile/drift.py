"""Feature drift between two windows from a profile's sketches, with the error it carries.

KS: the largest gap between the two windows' CDFs, each estimated by a merged KLL sketch and
compared at the quantiles of both; ``ks_error`` is the two sketches' stated double-sided rank
errors (99% confidence each) plus the grid spacing. PSI: the reference sketch's quantiles are the bin edges (as in
``kernels.drift``), each bin's share is read from both sketches' CDFs; ``psi_error`` is the
first-order change of PSI when every share moves by its sketch's rank error. Null rates are
exact (from counts). Windows are [start, end) and count a bucket by its start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from ..kernels import kll
from ..kernels.drift import DEFAULT_BINS, PSI_EPS, psi_bins, psi_from_counts
from ..workspace import contract as c
from .schema import Profile

_GRID = np.linspace(0.0, 1.0, 1001)


def _window_sketches(
    prof: Profile, model: str, features: list[str], w: tuple[datetime, datetime]
) -> tuple[dict[str, Any], dict[str, int], int]:
    cond = (pl.col(c.MODEL) == model) & (pl.col(c.TS) >= w[0]) & (pl.col(c.TS) < w[1])
    rows = int(prof.moments.filter(cond)["rows"].sum())
    feats = prof.features.filter(cond & pl.col("feature").is_in(features))
    sketches: dict[str, Any] = {}
    present: dict[str, int] = {}
    for (f,), part in feats.group_by(["feature"]):
        blobs = [b for b in part["sketch"].to_list() if b is not None]
        if blobs:
            sketches[str(f)] = kll.merge(kll.unseal(b, check=False) for b in blobs)
        present[str(f)] = int(part["n"].sum())
    return sketches, present, rows


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
    err = float(np.sum(grad) * (kll.rank_error(r) + kll.rank_error(x)))
    return value, err


def sketch_drift(
    prof: Profile,
    model: str,
    features: list[str],
    reference: tuple[datetime, datetime],
    current: tuple[datetime, datetime],
) -> pl.DataFrame:
    """Per feature: n_reference, n_current, ks, ks_error, psi, psi_error, null rates."""
    rs, rn, rrows = _window_sketches(prof, model, features, reference)
    xs, xn, xrows = _window_sketches(prof, model, features, current)
    recs = []
    for f in features:
        r, x = rs.get(f), xs.get(f)
        ks, ks_err = _ks(r, x) if r is not None and x is not None else (np.nan, np.nan)
        psi, psi_err = _psi(r, x) if r is not None and x is not None else (np.nan, np.nan)
        recs.append(
            {
                "feature": f,
                "n_reference": int(r.n) if r is not None else 0,
                "n_current": int(x.n) if x is not None else 0,
                "ks": ks,
                "ks_error": ks_err,
                "psi": psi,
                "psi_error": psi_err,
                "null_rate_reference": 1 - rn.get(f, 0) / rrows if rrows else None,
                "null_rate_current": 1 - xn.get(f, 0) / xrows if xrows else None,
            }
        )
    return pl.DataFrame(recs)
