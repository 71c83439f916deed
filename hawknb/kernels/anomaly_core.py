"""Shared numerics of the anomaly detectors: cleaning, rolling robust statistics, periods.

Kept apart from :mod:`hawknb.kernels.anomaly` so that the offline detector and the causal
(streaming) scorer use exactly the same definitions of "robust z" and "period".
"""

from __future__ import annotations

import numpy as np
import polars as pl

#: MAD -> standard deviation under a normal distribution
MAD_TO_SD = 1.4826


def as_values(values: object, name: str = "values") -> np.ndarray:
    """Return a 1-D float64 copy; non-finite entries become NaN. Raise on empty/non-numeric."""
    if isinstance(values, pl.Series):
        if not values.dtype.is_numeric() and values.dtype != pl.Null:
            raise ValueError(f"{name} must be numeric, got dtype {values.dtype}")
        arr = values.cast(pl.Float64).fill_null(float("nan")).to_numpy().copy()
    else:
        try:
            arr = np.asarray(values)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name} could not be read as an array: {exc}") from exc
        if arr.dtype == object:
            try:
                arr = np.array([np.nan if v is None else v for v in arr.ravel()], dtype=float)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{name} must be numeric; found non-numeric entries. Fix: convert the "
                    "column to numbers (e.g. pd.to_numeric) before detecting anomalies"
                ) from exc
        elif not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        arr = np.array(arr, dtype=float)  # copy: never touch the caller's array
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; anomaly detection needs at least one row")
    arr[~np.isfinite(arr)] = np.nan
    return arr


def fill_missing(x: np.ndarray) -> np.ndarray:
    """Carry the last finite value forward (the first finite one backward at the start).

    Causal except at the very start, where there is no past to carry.
    """
    if np.isnan(x).all():
        raise ValueError(
            "values are all NaN/inf; there is nothing to detect. Fix: check the metric column"
        )
    s = pl.Series(x).fill_nan(None).fill_null(strategy="forward").fill_null(strategy="backward")
    return s.to_numpy().astype(float, copy=True)


def shift(a: np.ndarray, k: int, fill: float = np.nan) -> np.ndarray:
    """a[t - k] at position t (fill before the start)."""
    out = np.full(a.shape, fill, dtype=float)
    if 0 < k < a.size:
        out[k:] = a[: a.size - k]
    elif k == 0:
        out[:] = a
    return out


def trailing_robust_z(
    x: np.ndarray, window: int, *, min_samples: int = 20, sd_floor: float = 0.1
) -> np.ndarray:
    """Signed robust z of each row against the median/MAD of the ``window`` rows before it.

    The scale is floored by a fraction of the rolling standard deviation (a series that is
    constant most of the time has MAD 0) and by a tiny relative epsilon (a truly constant
    series), so any departure from a constant reads as a very large z rather than inf/NaN.
    Rows without ``min_samples`` of history get z = 0; NaN rows are skipped by the windows.
    """
    med, scale = trailing_median_scale(x, window, min_samples=min_samples, sd_floor=sd_floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - med) / scale
    return np.nan_to_num(z, nan=0.0, posinf=1e6, neginf=-1e6)


def trailing_median_scale(
    x: np.ndarray, window: int, *, min_samples: int = 20, sd_floor: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust scale of the ``window`` rows before each row (see trailing_robust_z).

    NaN where fewer than ``min_samples`` rows of history exist.
    """
    s = pl.Series(x).fill_nan(None)
    med = shift(s.rolling_median(window, min_samples=min_samples).to_numpy(), 1)
    mad = shift(
        pl.Series(np.abs(x - med))
        .fill_nan(None)
        .rolling_median(window, min_samples=min_samples)
        .to_numpy(),
        1,
    )
    sd = shift(s.rolling_std(window, min_samples=min_samples).to_numpy(), 1)
    scale = np.fmax(MAD_TO_SD * mad, sd_floor * sd)
    return med, np.fmax(scale, 1e-9 * (1.0 + np.abs(med)))


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation for lags 0..max_lag (FFT, O(n log n)); zeros for a constant.

    Values so large that their squares overflow are scaled down first (the autocorrelation
    does not depend on the scale); ordinary values are used as they are."""
    big = float(np.max(np.abs(x))) if x.size else 0.0
    if big > 1e150:
        x = x / big
    x = x - x.mean()
    n = x.size
    max_lag = max(0, min(max_lag, n - 1))
    if not np.any(x):
        return np.zeros(max_lag + 1)
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f), 2 * n)[: max_lag + 1]
    return ac / ac[0]


def detect_period(
    x: np.ndarray,
    *,
    candidates: tuple[int, ...] = (),
    max_lag: int | None = None,
    min_acf: float = 0.3,
) -> int | None:
    """The seasonal period in samples, or None.

    Candidates from the cadence (a day, a week in samples) win when the autocorrelation at
    that lag is strong, because they are what a human expects; otherwise the first clear
    autocorrelation peak is used. At least two full periods of data are required.
    """
    x = x[np.isfinite(x)]
    n = x.size
    if n < 8:
        return None
    max_lag = n // 2 if max_lag is None else min(max_lag, n // 2)
    if max_lag < 4:
        return None
    ac = autocorrelation(x, max_lag + 1)
    best: int | None = None
    best_val = min_acf
    for c in candidates:
        if 4 <= c <= max_lag:
            lo, hi = max(2, int(c * 0.97)), min(max_lag, int(np.ceil(c * 1.03)))
            lag = lo + int(np.argmax(ac[lo : hi + 1]))
            if ac[lag] > best_val:
                best, best_val = c, float(ac[lag])
    if best is not None:
        return best
    # first local maximum above min_acf after the ACF has dipped below it
    below = np.flatnonzero(ac[1:] < min_acf)
    if below.size == 0:
        return None
    start = int(below[0]) + 1
    for lag in range(max(start, 4), max_lag):
        if ac[lag] > min_acf and ac[lag] >= ac[lag - 1] and ac[lag] >= ac[lag + 1]:
            return lag
    return None
