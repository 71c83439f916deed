"""Calibration and normalized entropy of predictions against (late, nullable) labels.

Why these: in ads-style systems predictions are consumed as probabilities (bids multiply them),
so a model can rank perfectly and still lose money when it is mis-calibrated. Calibration
``sum(pred) / sum(label)`` is the single number on-call engineers watch (1.0 is perfect); the
reliability curve shows *where* it breaks; normalized entropy (log loss divided by the entropy
of the base rate) is the quality metric that stays comparable across traffic with different
click rates. Labels arrive late, so null labels are skipped (not treated as 0); NaN/inf
predictions are counted and excluded, never silently propagated into a mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError

ArrayLike = Any
EPS = 1e-12


@dataclass(frozen=True)
class Cleaned:
    """Rows usable for calibration, and what was dropped."""

    prediction: np.ndarray
    label: np.ndarray
    n_total: int
    n_null_label: int  # label null/NaN: not yet known, skipped
    n_nonfinite_prediction: int  # prediction NaN/inf among labelled rows, excluded


def clean(prediction: ArrayLike, label: ArrayLike) -> Cleaned:
    """Align predictions and labels, skip null labels, drop non-finite predictions (counted)."""
    p = _vector(prediction, "prediction")
    y = _vector(label, "label")
    if p.shape != y.shape:
        raise ValueError(
            f"prediction has {p.size} values and label {y.size}; pass the two columns of one frame"
        )
    labelled = np.isfinite(y)
    fin = np.isfinite(p)
    return Cleaned(
        prediction=p[labelled & fin],
        label=y[labelled & fin],
        n_total=int(p.size),
        n_null_label=int((~labelled).sum()),
        n_nonfinite_prediction=int((labelled & ~fin).sum()),
    )


def _vector(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, (pl.Series,)):
        x = x.cast(pl.Float64).to_numpy()  # nulls -> NaN
    elif hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):  # pandas Series
        x = x.to_numpy(dtype=np.float64, na_value=np.nan)
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        a = a.reshape(-1) if a.ndim == 2 and 1 in a.shape else a
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d vector, got shape {a.shape}")
    return a


def _need(cl: Cleaned, what: str) -> None:
    if cl.prediction.size == 0:
        raise ValueError(
            f"{what}: no rows with both a label and a finite prediction "
            f"({cl.n_total} rows, {cl.n_null_label} without label, "
            f"{cl.n_nonfinite_prediction} with NaN/inf prediction); wait for labels or widen the window"
        )


def calibration(prediction: ArrayLike, label: ArrayLike) -> float:
    """sum(prediction) / sum(label) over labelled rows with a finite prediction (1.0 = calibrated;
    inf when no positive label was seen yet)."""
    cl = clean(prediction, label)
    _need(cl, "calibration")
    s = float(cl.label.sum())
    return float(cl.prediction.sum()) / s if s != 0 else float("inf")


def _check_probability(cl: Cleaned, what: str) -> None:
    if cl.prediction.min() < 0 or cl.prediction.max() > 1:
        raise ValueError(
            f"{what}: predictions must be probabilities in [0, 1] (found "
            f"[{cl.prediction.min():.3g}, {cl.prediction.max():.3g}]); apply the model's link first"
        )
    if cl.label.min() < 0 or cl.label.max() > 1:
        raise ValueError(f"{what}: labels must be in [0, 1] (binary or soft labels)")


def log_loss(prediction: ArrayLike, label: ArrayLike, *, eps: float = EPS) -> float:
    """Mean binary cross-entropy; predictions clipped to [eps, 1-eps]."""
    cl = clean(prediction, label)
    _need(cl, "log_loss")
    _check_probability(cl, "log_loss")
    return _log_loss(cl.prediction, cl.label, eps)


def _log_loss(p: np.ndarray, y: np.ndarray, eps: float) -> float:
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _entropy(q: float, eps: float) -> float:
    q = min(max(q, eps), 1 - eps)
    return float(-(q * np.log(q) + (1 - q) * np.log1p(-q)))


def normalized_entropy(prediction: ArrayLike, label: ArrayLike, *, eps: float = EPS) -> float:
    """Log loss divided by the entropy of the base rate (the log loss of always predicting the
    average label): < 1 means the model beats the constant predictor; NaN when every label is
    the same (the base-rate entropy is 0)."""
    cl = clean(prediction, label)
    _need(cl, "normalized_entropy")
    _check_probability(cl, "normalized_entropy")
    base = float(cl.label.mean())
    if base <= 0 or base >= 1:
        return float("nan")
    return _log_loss(cl.prediction, cl.label, eps) / _entropy(base, eps)


@dataclass(frozen=True)
class ReliabilityCurve:
    """Binned predicted vs observed rate; empty bins are dropped."""

    bin_lower: np.ndarray
    bin_upper: np.ndarray
    mean_prediction: np.ndarray
    mean_label: np.ndarray
    count: np.ndarray
    ece: float  # expected calibration error: count-weighted mean |mean_prediction - mean_label|

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "bin_lower": self.bin_lower,
                "bin_upper": self.bin_upper,
                "mean_prediction": self.mean_prediction,
                "mean_label": self.mean_label,
                "count": self.count,
            }
        )


def reliability_curve(
    prediction: ArrayLike,
    label: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> ReliabilityCurve:
    """Reliability diagram data. ``uniform`` bins split [min, max] of the predictions (so it
    also works for non-probability predictions); ``quantile`` bins hold equal counts, which
    keeps the rare high-probability region from being one noisy point."""
    if n_bins < 1:
        raise ValueError(f"n_bins: must be >= 1, got {n_bins}")
    cl = clean(prediction, label)
    _need(cl, "reliability_curve")
    p, y = cl.prediction, cl.label
    if strategy == "uniform":
        lo, hi = (0.0, 1.0) if p.min() >= 0 and p.max() <= 1 else (float(p.min()), float(p.max()))
        edges = np.linspace(lo, hi, n_bins + 1)
    elif strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
        if edges.size == 1:
            edges = np.array([edges[0], edges[0]])
    else:
        raise ValueError(f"strategy: expected 'uniform' or 'quantile', got {strategy!r}")
    nb = edges.size - 1
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, nb - 1)
    cnt = np.bincount(idx, minlength=nb)
    sp = np.bincount(idx, weights=p, minlength=nb)
    sy = np.bincount(idx, weights=y, minlength=nb)
    keep = cnt > 0
    mp, my = sp[keep] / cnt[keep], sy[keep] / cnt[keep]
    ece = float(np.sum(cnt[keep] * np.abs(mp - my)) / cnt.sum())
    return ReliabilityCurve(edges[:-1][keep], edges[1:][keep], mp, my, cnt[keep], ece)


def expected_calibration_error(
    prediction: ArrayLike,
    label: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> float:
    """Count-weighted mean gap between predicted and observed rate over prediction bins."""
    return reliability_curve(prediction, label, n_bins=n_bins, strategy=strategy).ece


@dataclass(frozen=True)
class CalibrationReport:
    n_rows: int
    n_labelled: int  # rows used: labelled, finite prediction
    n_null_label: int
    n_nonfinite_prediction: int
    calibration: float
    mean_prediction: float
    base_rate: float  # mean label
    ece: float
    log_loss: float  # NaN unless predictions are probabilities
    normalized_entropy: float  # NaN unless predictions are probabilities
    curve: ReliabilityCurve


def calibration_report(
    prediction: ArrayLike, label: ArrayLike, *, n_bins: int = 10, eps: float = EPS
) -> CalibrationReport:
    """Everything above in one pass; log loss / NE only when predictions are probabilities."""
    cl = clean(prediction, label)
    _need(cl, "calibration_report")
    p, y = cl.prediction, cl.label
    is_prob = p.min() >= 0 and p.max() <= 1 and y.min() >= 0 and y.max() <= 1
    base = float(y.mean())
    ll = _log_loss(p, y, eps) if is_prob else float("nan")
    ne = ll / _entropy(base, eps) if is_prob and 0 < base < 1 else float("nan")
    s = float(y.sum())
    return CalibrationReport(
        n_rows=cl.n_total,
        n_labelled=int(p.size),
        n_null_label=cl.n_null_label,
        n_nonfinite_prediction=cl.n_nonfinite_prediction,
        calibration=float(p.sum()) / s if s != 0 else float("inf"),
        mean_prediction=float(p.mean()),
        base_rate=base,
        ece=(curve := reliability_curve(p, y, n_bins=n_bins)).ece,
        log_loss=ll,
        normalized_entropy=ne,
        curve=curve,
    )


def calibration_frame(
    frame: Any,
    *,
    by: Sequence[str] = (c.MODEL, c.EXPERIMENT),
    every: str | None = None,
    ts: str = c.TS,
    prediction: str = c.PREDICTION,
    label: str = c.LABEL,
    eps: float = EPS,
) -> pl.DataFrame:
    """Calibration, log loss and NE per group (and per time bucket when ``every`` is given),
    as one lazy polars aggregation -- the form the health and triage steps consume.

    Columns: the group keys, [ts], rows, labelled, null_label, nonfinite_prediction,
    calibration, mean_prediction, base_rate, log_loss, normalized_entropy. Log loss / NE are
    null in groups whose predictions are not all in [0, 1].
    """
    lf = as_lazy(frame)
    schema = lf.collect_schema()
    need = [*by, prediction, label] + ([ts] if every else [])
    missing = [col for col in need if col not in schema]
    if missing:
        raise WorkspaceError(
            "calibration frame",
            f"is missing columns {missing}",
            found=f"columns {list(schema.names())[:20]}",
            fix="pass a serving log with labels (or by=/prediction=/label= naming its columns)",
        )
    keys: list[pl.Expr] = [pl.col(k) for k in by]
    if every:
        keys.append(pl.col(ts).dt.truncate(every).alias(ts))
    p = pl.col(prediction).cast(pl.Float64)
    y = pl.col(label).cast(pl.Float64)
    labelled = y.is_not_null() & y.is_finite()
    use = labelled & p.is_finite()
    pu, yu = p.filter(use), y.filter(use)
    pc = pu.clip(eps, 1 - eps)
    ll = -(yu * pc.log() + (1 - yu) * (1 - pc).log()).mean()
    base = yu.mean()
    bc = base.clip(eps, 1 - eps)
    ent = -(bc * bc.log() + (1 - bc) * (1 - bc).log())
    is_prob = (pu.min() >= 0) & (pu.max() <= 1)
    out = lf.group_by(keys).agg(
        pl.len().alias("rows"),
        use.sum().alias("labelled"),
        (~labelled).sum().alias("null_label"),
        (labelled & ~p.is_finite()).sum().alias("nonfinite_prediction"),
        (pu.sum() / yu.sum()).alias("calibration"),
        pu.mean().alias("mean_prediction"),
        base.alias("base_rate"),
        pl.when(is_prob).then(ll).alias("log_loss"),
        pl.when(is_prob & (base > 0) & (base < 1)).then(ll / ent).alias("normalized_entropy"),
    )
    return collect(out.sort([*by, *([ts] if every else [])]))
