"""Which models' inputs broke at a moment: values that fall back to a default or go missing
(lost coverage), and distributions that step (a source that lost rows shrinks its counts).

A data break does not always move a model's mean prediction: a feature that falls back to
its default on half the rows, or a count that shrinks, reshuffles *which* rows get high
scores while the average stays put, so the model's prediction health can look normal while
the business metric drops. The inputs themselves show the break plainly, and that is what
this kernel measures, per feature, as a step at the onset against the same feature's earlier
steps (its own placebo tests):

* the rows are cut into windows of length ``window``, the last one starting at the onset;
  each window is compared with the two windows before it (a two-sample Kolmogorov-Smirnov
  test, and a "takeover" test: the share of the window's most frequent value -- missing
  counts as one value -- against that value's share before, a two-proportion z test);
* the onset test is the larger of the comparisons of the window starting at the onset and of
  the one just before it (a break up to one window before the detected onset still counts);
  the placebo tests are the comparisons of every earlier window;
* a feature broke when its onset test is both significant and far more surprising than any
  of its placebo tests (a feature that moves by itself every few hours, or drifts slowly
  over days, does not);
* a model's break is the number of its features that broke.

Surprise is measured as -ln(p) so the two tests share one scale.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.special import log_ndtr

from ..engine import as_lazy, collect
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError
from .drift import ks_distance

#: -ln(p) from which an onset test counts (p < 1e-4)
MIN_SURPRISE = 9.2
#: an onset test must be this many times as surprising as the feature's largest placebo test
PLACEBO_RATIO = 2.0
#: windows compared before the onset's (placebo tests)
PLACEBOS = 6
#: a window's most frequent value needs this many rows to be tested as a takeover
MIN_TAKEOVER_ROWS = 3
#: rows per window and model kept for the tests (deterministic subsample beyond)
MAX_WINDOW_ROWS = 2000


@dataclass(frozen=True)
class FeatureBreak:
    """One feature that broke at the onset: ``surprise`` -ln(p) of its onset test,
    ``placebo`` the largest of its placebo tests, ``test`` which test fired ("ks" or
    "takeover"), and the share of its most frequent value before/after (a takeover)."""

    feature: str
    surprise: float
    placebo: float
    test: str
    share_before: float
    share_after: float
    #: the window whose test fired, counted from the onset's (0; -1 the window before it)
    window: int = 0


@dataclass(frozen=True)
class InputBreak:
    """One model's inputs around the onset: the features that broke (most surprising first)
    out of ``n_features`` tested, with ``rows`` rows in the windows compared."""

    model: str
    broken: tuple[FeatureBreak, ...]
    n_features: int
    rows: int
    #: where its features broke: the start of the window most of them broke in (None when
    #: none did), which may lie before a metric's onset that labels or detection delayed
    start: dt.datetime | None = None

    @property
    def n_broken(self) -> int:
        return len(self.broken)

    def top(self, k: int = 5) -> list[str]:
        return [b.feature for b in self.broken[:k]]


def _ks_surprise(later: np.ndarray, before: np.ndarray) -> float:
    """-ln(p) of the two-sample KS test (asymptotic Kolmogorov tail, 2 exp(-2 k^2))."""
    n, m = later.size, before.size
    if n < 5 or m < 5:
        return 0.0
    k = ks_distance(later, before) * np.sqrt(n * m / (n + m))
    return float(max(2.0 * k * k - np.log(2.0), 0.0))


def _takeover(later: np.ndarray, before: np.ndarray) -> tuple[float, float, float]:
    """(-ln p, share before, share after) of the later window's most frequent value."""
    n, m = later.size, before.size
    if n < 5 or m < 5:
        return 0.0, 0.0, 0.0
    vals, counts = np.unique(later, return_counts=True)
    i = int(np.argmax(counts))
    if counts[i] < MIN_TAKEOVER_ROWS:
        return 0.0, 0.0, 0.0
    pa, pb = counts[i] / n, float(np.count_nonzero(before == vals[i])) / m
    pooled = (counts[i] + pb * m) / (n + m)
    if pa <= pb or pooled >= 1.0:
        return 0.0, pb, pa
    z = (pa - pb) / np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    return float(-log_ndtr(-z)), pb, pa


def _tests(x: np.ndarray, win: np.ndarray, later: int) -> tuple[float, str, float, float]:
    """(surprise, test, share before, share after) of window ``later`` against the two before."""
    a = x[win == later]
    b = x[(win == later - 1) | (win == later - 2)]
    ks = _ks_surprise(a, b)
    tk, sb, sa = _takeover(a, b)
    return (tk, "takeover", sb, sa) if tk > ks else (ks, "ks", sb, sa)


def _feature_break(
    name: str, x: np.ndarray, win: np.ndarray, n_win: int, lookback: int
) -> FeatureBreak | None:
    """The feature's break at the onset (window n_win - 1 starts there, the ``lookback``
    windows before it are tested too), or None."""
    tested = range(n_win - 1, n_win - 2 - lookback, -1)
    onset = [(*_tests(x, win, w), w - (n_win - 1)) for w in tested]
    # the earliest window that fires (a break shows in every later window too)
    fired = [t for t in onset if t[0] >= MIN_SURPRISE]
    if not fired:
        return None
    best = max(fired, key=lambda t: t[0])
    placebo = max((_tests(x, win, w)[0] for w in range(2, n_win - 1 - lookback)), default=0.0)
    if best[0] < PLACEBO_RATIO * placebo:
        return None
    first = min(t[4] for t in fired if t[0] >= PLACEBO_RATIO * placebo)
    return FeatureBreak(name, best[0], placebo, best[1], best[2], best[3], first)


def input_breaks(
    serving: Any,
    models: Mapping[str, Sequence[str]],
    onset: dt.datetime,
    *,
    window: dt.timedelta = dt.timedelta(hours=3),
    placebos: int = PLACEBOS,
    lookback: int = 1,
    ts: str = c.TS,
) -> list[InputBreak]:
    """For each model (name -> its feature columns), the features that broke at ``onset``;
    models with the most broken features first (ties by name).

    ``window``: the length of each compared window (the onset window is [onset, onset +
    window)); ``lookback``: how many windows before it are tested too (a break up to that
    many windows before a late-detected onset); ``placebos``: how many earlier windows give
    each feature's placebo tests, so the rows read span ``(placebos + 3 + lookback) * window``
    before the onset's window.
    """
    return input_breaks_many(
        serving, models, [(onset, window)], placebos=placebos, lookback=lookback, ts=ts
    )[0]


def input_breaks_many(
    serving: Any,
    models: Mapping[str, Sequence[str]],
    onsets: Sequence[tuple[dt.datetime, dt.timedelta]],
    *,
    placebos: int = PLACEBOS,
    lookback: int = 1,
    ts: str = c.TS,
) -> list[list[InputBreak]]:
    """`input_breaks` at each (onset, window) of ``onsets``, in their order, decoding the
    feature columns once per group of overlapping ranges.

    Why: the walk weighs a dozen candidate windows, mostly within a day or two of each other,
    and decoding every feature column of each window's rows (most of which the per-window
    subsample drops) was most of its cost. The rows each test keeps are chosen from the cheap
    (model, ts) columns first, exactly as `input_breaks` alone chooses them, and only those
    rows' features are decoded, so the answers are the same and the memory is the kept rows.
    """
    for onset, window in onsets:
        _check(onset, window, placebos, lookback)
    lf = as_lazy(serving)
    schema = lf.collect_schema()
    for col in (ts, c.MODEL):
        if col not in schema:
            raise WorkspaceError(
                f"input_breaks(serving=...), column '{col}'",
                "is missing",
                fix="pass the serving log (ws.serving)",
            )
    # placebo windows, their two references, the onset's window and the lookback windows
    n_win = placebos + 3 + lookback
    wanted = {m: [f for f in dict.fromkeys(fs) if f in schema] for m, fs in models.items()}
    spans = [(o - (n_win - 1) * w, o + w) for o, w in onsets]
    out: list[list[InputBreak]] = [[] for _ in onsets]
    for group in span_groups(spans):
        frames = _kept_rows(lf, wanted, [(spans[i], onsets[i][1]) for i in group], n_win, ts)
        for i, df in zip(group, frames, strict=True):
            onset, window = onsets[i]
            found = [
                _model_break(df, m, fs, n_win, lookback, onset, window) for m, fs in wanted.items()
            ]
            out[i] = sorted(found, key=lambda b: (-b.n_broken, -_mass(b), b.model))
    return out


def _check(onset: dt.datetime, window: dt.timedelta, placebos: int, lookback: int) -> None:
    if onset.tzinfo is None:
        raise ValueError("input_breaks(onset=...): pass a timezone-aware UTC datetime")
    if window <= dt.timedelta(0):
        raise ValueError(f"input_breaks(window={window!r}) must be a positive duration")
    if placebos < 1:
        raise ValueError(f"input_breaks(placebos={placebos}) must be at least 1")
    if lookback < 0:
        raise ValueError(f"input_breaks(lookback={lookback}) must be 0 or more")


#: overlapping ranges are read together while the group spans at most this many times its
#: longest range: a chain of windows across the whole history must not become one whole-log read
GROUP_SPAN = 4


def span_groups(spans: Sequence[tuple[Any, Any]]) -> list[list[int]]:
    """Indices of ``spans`` ((lo, hi) pairs) grouped so that each group's ranges overlap one
    another's union and the union spans at most GROUP_SPAN times its longest range; each
    group is then read once (a range alone is its own group)."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    groups: list[list[int]] = []
    lo = hi = longest = None
    for i in order:
        a, b = spans[i]
        if groups and a <= hi and max(hi, b) - lo <= GROUP_SPAN * max(longest, b - a):
            groups[-1].append(i)
            hi, longest = max(hi, b), max(longest, b - a)
        else:
            groups.append([i])
            lo, hi, longest = a, b, b - a
    return groups


def _kept_rows(
    lf: pl.LazyFrame,
    wanted: Mapping[str, list[str]],
    requests: list[tuple[tuple[dt.datetime, dt.datetime], dt.timedelta]],
    n_win: int,
    ts: str,
) -> list[pl.DataFrame]:
    """Per request ((lo, hi), window): its rows (model, __w and the features as Float64, in
    the log's order), subsampled to MAX_WINDOW_ROWS per window and model as `_model_break`
    would. One cheap read of (model, ts) over the requests' union picks the rows; one read of
    the features decodes only those."""
    lo = min(r[0][0] for r in requests)
    hi = max(r[0][1] for r in requests)
    cols = sorted({f for fs in wanted.values() for f in fs})
    base = lf.filter(pl.col(c.MODEL).is_in(list(wanted))).filter(
        (pl.col(ts) >= lo) & (pl.col(ts) < hi)
    )
    index = collect(
        base.select(pl.col(c.MODEL).cast(pl.String), pl.col(ts).alias("__ts")).with_row_index("__p")
    )
    keeps = [_keep(index, list(wanted), a, b, w, n_win) for (a, b), w in requests]
    union = pl.concat(keeps).unique()
    feats = collect(
        base.select(
            pl.col(c.MODEL).cast(pl.String),
            pl.col(ts).alias("__ts"),
            *[pl.col(f).cast(pl.Float64) for f in cols],
        )
        .with_row_index("__p")
        .filter(pl.col("__p").is_in(union.implode()))
    )
    out = []
    for ((a, _), w), keep in zip(requests, keeps, strict=True):
        rows = feats.filter(pl.col("__p").is_in(keep.implode()))
        window = ((pl.col("__ts") - a).dt.total_microseconds() // _us(w)).cast(pl.Int64)
        out.append(rows.select(c.MODEL, window.alias("__w"), *cols))
    return out


def _keep(
    index: pl.DataFrame,
    models: list[str],
    lo: dt.datetime,
    hi: dt.datetime,
    window: dt.timedelta,
    n_win: int,
) -> pl.Series:
    """The positions (``__p``) of the rows one request's tests use: its range's rows of each
    model, at most MAX_WINDOW_ROWS per window (the same deterministic subsample, on the rows
    in the same order, as `input_breaks` of that request alone)."""
    rows = index.filter((pl.col("__ts") >= lo) & (pl.col("__ts") < hi)).with_columns(
        ((pl.col("__ts") - lo).dt.total_microseconds() // _us(window)).cast(pl.Int64).alias("__w")
    )
    parts = [index["__p"].head(0)]
    for model in models:
        part = rows.filter(pl.col(c.MODEL) == model)
        if part.height > MAX_WINDOW_ROWS * n_win:
            part = part.filter(pl.int_range(pl.len()).shuffle(seed=0).over("__w") < MAX_WINDOW_ROWS)
        parts.append(part["__p"])
    return pl.concat(parts)


def _mass(b: InputBreak) -> float:
    return float(sum(min(f.surprise, 50.0) for f in b.broken))


def _us(d: dt.timedelta) -> int:
    return max(int(d / dt.timedelta(microseconds=1)), 1)


def _model_break(
    df: pl.DataFrame,
    model: str,
    features: list[str],
    n_win: int,
    lookback: int,
    onset: dt.datetime,
    window: dt.timedelta,
) -> InputBreak:
    rows = df.filter(pl.col(c.MODEL) == model)
    if rows.height > MAX_WINDOW_ROWS * n_win:
        # at most MAX_WINDOW_ROWS per window, the same rows for every feature
        rows = (
            rows.with_row_index("__i")
            .filter(pl.int_range(pl.len()).shuffle(seed=0).over("__w") < MAX_WINDOW_ROWS)
            .drop("__i")
        )
    win = rows["__w"].to_numpy()
    # one conversion for all features (nulls become NaN); a missing value is one more value
    # (it can take over like a default)
    values = rows.select(features).to_numpy() if features else np.empty((rows.height, 0))
    values = np.where(np.isfinite(values), values, np.inf)
    broken = []
    for j, f in enumerate(features):
        b = _feature_break(f, np.ascontiguousarray(values[:, j]), win, n_win, lookback)
        if b is not None:
            broken.append(b)
    broken.sort(key=lambda b: (-b.surprise, b.feature))
    start = None
    if broken:
        # the window most of its features broke in (ties: the earliest)
        offsets = [b.window for b in broken]
        start = onset + min(offsets, key=lambda o: (-offsets.count(o), o)) * window
    return InputBreak(model, tuple(broken), len(features), rows.height, start)


__all__ = ["FeatureBreak", "InputBreak", "input_breaks", "input_breaks_many", "span_groups"]
