"""NAB (Numenta Anomaly Benchmark) scoring, re-implemented from NAB's published rules.

Why a re-implementation: NAB's own scorer is written around its runner and multiprocessing
pool; here we need a small, vectorized, testable function that scores a whole corpus for every
threshold at once, so the threshold can be optimized over the corpus as NAB does.

The rules (NAB ``nab/sweeper.py``, ``nab/optimizer.py``, ``nab/runner.py``):

* The first ``min(floor(0.15 * n), 0.15 * 5000)`` rows of each file are *probationary*: they
  are neither rewarded nor penalized.
* A row is a detection when its anomaly score is ``>= threshold``.
* Rows inside a labelled window ``[a, b]`` (width ``w = b - a + 1``) have relative position
  ``p = -(b - i + 1) / w`` and are worth ``tpWeight * S(p) / S(-1)`` where
  ``S(p) = 2 * sigmoid(-5 p) - 1`` (``-1`` when ``p > 3``). Only the best (= earliest)
  detection in a window counts; a window with no detection costs ``-fnWeight``.
* Rows outside every window are false positives worth ``fpWeight * S(p)``: ``S = -1`` before
  the first window, else ``p = (i - b_prev) / (w_prev - 1)`` from the end of the previous
  window, so a late detection just after a window is penalized less. Every such detection
  counts (there is no suppression in the scorer).
* The threshold is the one that maximizes the summed score over the whole corpus (ties: the
  highest threshold). The final score is ``100 * (raw - null) / (perfect - null)`` with
  ``perfect = tpWeight * number_of_windows`` and ``null`` the score of a detector that never
  fires.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

#: NAB's default share of each file that is not scored
PROBATION_PERCENT = 0.15

#: NAB's published scoreboard (results/final_results.json, NAB v1.1). The random row is the
#: README's *mean over random seeds* (11.0; its seeds spread 7.95-16.83 standard): the
#: final_results.json entry (16.8) is one lucky seed, the top of that spread.
PUBLISHED = {
    "ARTime": {"standard": 74.9, "reward_low_FP_rate": 65.2, "reward_low_FN_rate": 80.4},
    "Numenta HTM": {"standard": 70.1, "reward_low_FP_rate": 63.1, "reward_low_FN_rate": 74.3},
    "Twitter ADVec": {"standard": 47.1, "reward_low_FP_rate": 33.6, "reward_low_FN_rate": 53.5},
    "random (mean of seeds)": {
        "standard": 11.0,
        "reward_low_FP_rate": 1.2,
        "reward_low_FN_rate": 19.5,
    },
    "null": {"standard": 0.0, "reward_low_FP_rate": 0.0, "reward_low_FN_rate": 0.0},
}


@dataclass(frozen=True)
class CostMatrix:
    """Weights of one NAB application profile."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0

    @classmethod
    def from_profile(cls, profile: Mapping[str, object]) -> CostMatrix:
        cm = profile.get("CostMatrix", profile)
        if not isinstance(cm, Mapping):
            raise ValueError(f"profile has no CostMatrix mapping: {profile!r}")
        return cls(tp=float(cm["tpWeight"]), fp=float(cm["fpWeight"]), fn=float(cm["fnWeight"]))


@dataclass(frozen=True)
class FileSweep:
    """Per-row scoring material of one data file (independent of the threshold)."""

    name: str
    scores: np.ndarray  # anomaly score per row
    sweep: np.ndarray  # weighted NAB value of a detection at that row
    window: np.ndarray  # window index per row (-1: outside any window)
    scorable: np.ndarray  # False on probationary rows
    n_windows: int  # windows with at least one scorable row (each costs fn if missed)
    n_labelled: int  # all windows in the label file (for the perfect score)


@dataclass(frozen=True)
class FileScore:
    name: str
    score: float
    tp: int
    fp: int
    windows_hit: int
    windows: int


@dataclass(frozen=True)
class CorpusScore:
    """Result of scoring a corpus with one profile at its corpus-optimal threshold."""

    threshold: float
    raw: float
    null: float
    perfect: float
    normalized: float
    files: list[FileScore] = field(default_factory=list)

    @property
    def tp(self) -> int:
        return sum(f.tp for f in self.files)

    @property
    def fp(self) -> int:
        return sum(f.fp for f in self.files)

    @property
    def windows_hit(self) -> int:
        return sum(f.windows_hit for f in self.files)


def probation_length(n_rows: int, probation_percent: float = PROBATION_PERCENT) -> float:
    """NAB's probationary period: 15% of the file, capped at 15% of 5000 rows (750)."""
    return min(math.floor(probation_percent * n_rows), probation_percent * 5000)


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's S(p) = 2*sigmoid(-5p) - 1, forced to -1 beyond p > 3."""
    p = np.asarray(position, dtype=float)
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * p)) - 1.0
    return np.where(p > 3.0, -1.0, val)


def window_indices(
    timestamps: Sequence[object] | np.ndarray, windows: Sequence[Sequence[object]], name: str = ""
) -> list[tuple[int, int]]:
    """Map labelled window limits (timestamps) to row index ranges; limits must exist exactly."""
    ts = pl.Series("ts", list(timestamps) if not isinstance(timestamps, np.ndarray) else timestamps)
    ts = _as_datetime(ts)
    lookup = {v: i for i, v in enumerate(ts.to_list())}
    out = []
    for win in windows:
        if len(win) != 2:
            raise ValueError(f"{name}: window {win!r} is not a [start, end] pair")
        lo, hi = (_as_datetime(pl.Series([w])).item() for w in win)
        if lo not in lookup or hi not in lookup:
            raise ValueError(
                f"{name}: window limit {win!r} does not match a timestamp of the data file; "
                "NAB label timestamps must exactly match rows"
            )
        a, b = lookup[lo], lookup[hi]
        if b < a:
            raise ValueError(f"{name}: window {win!r} ends before it starts")
        out.append((a, b))
    out.sort()
    for (_, b0), (a1, _) in itertools.pairwise(out):
        if a1 <= b0:
            raise ValueError(f"{name}: windows overlap")
    return out


def _as_datetime(s: pl.Series) -> pl.Series:
    if s.dtype == pl.String:
        return s.str.to_datetime(time_unit="us", strict=True)
    if isinstance(s.dtype, pl.Datetime):
        return s.dt.cast_time_unit("us").dt.replace_time_zone(None)
    if s.dtype == pl.Object:
        return pl.Series(s.name, [str(x) for x in s.to_list()]).str.to_datetime(time_unit="us")
    return s


def sweep_file(
    scores: np.ndarray,
    windows: Sequence[tuple[int, int]],
    cost: CostMatrix,
    *,
    name: str = "",
    probation_percent: float = PROBATION_PERCENT,
) -> FileSweep:
    """Weighted value of a detection at every row of one file (NAB's calcSweepScore)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"{name}: anomaly scores must be 1-D, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"{name}: anomaly scores contain NaN; give every row a number in [0, 1]")
    n = scores.size
    idx = np.arange(n)
    window = np.full(n, -1, dtype=np.int64)
    sweep = np.empty(n, dtype=float)
    max_tp = float(scaled_sigmoid(np.array(-1.0)))
    # outside windows: distance past the previous window's end (or -1 before the first)
    prev_end = np.full(n, -1, dtype=np.int64)
    prev_width = np.zeros(n, dtype=float)
    for k, (a, b) in enumerate(windows):
        width = float(b - a + 1)
        window[a : b + 1] = k
        pos = -(b - idx[a : b + 1] + 1) / width
        sweep[a : b + 1] = scaled_sigmoid(pos) * cost.tp / max_tp
        prev_end[b + 1 :] = b
        prev_width[b + 1 :] = width
    outside = window < 0
    fp_val = np.full(n, -1.0)
    after = outside & (prev_end >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.abs(prev_end[after] - idx[after]) / (prev_width[after] - 1.0)
    pos = np.where(np.isfinite(pos), pos, np.inf)  # a width-1 window: NAB divides by zero
    fp_val[after] = scaled_sigmoid(pos)
    sweep[outside] = fp_val[outside] * cost.fp
    scorable = idx >= probation_length(n, probation_percent)
    n_windows = len({int(w) for w in window[scorable & ~outside]})
    return FileSweep(name, scores, sweep, window, scorable, n_windows, len(windows))


def threshold_curve(sweeps: Sequence[FileSweep], cost: CostMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Corpus score for every candidate threshold, highest threshold first.

    The first candidate is 1.1 (no detection at all). A window's value is the best detection
    in it, which can only rise as the threshold falls, so each window row contributes the rise
    of its window's running maximum; false positives simply add up.
    """
    frames = []
    offset = 0
    for s in sweeps:
        m = s.scorable
        frames.append(
            pl.DataFrame(
                {
                    "score": s.scores[m],
                    "sweep": s.sweep[m],
                    "window": np.where(s.window[m] >= 0, s.window[m] + offset, -1),
                }
            )
        )
        offset += max(s.n_labelled, 1)
    df = pl.concat(frames) if frames else pl.DataFrame({"score": [], "sweep": [], "window": []})
    base = -cost.fn * sum(s.n_windows for s in sweeps)
    df = df.sort("score", descending=True, maintain_order=True)
    df = df.with_columns(
        best=pl.max_horizontal(pl.col("sweep").cum_max().over("window"), pl.lit(-cost.fn))
    )
    # rows are in score order, so the shift is the window's best before this row
    prev = pl.col("best").shift(1, fill_value=-cost.fn).over("window")
    df = df.with_columns(
        delta=pl.when(pl.col("window") >= 0).then(pl.col("best") - prev).otherwise(pl.col("sweep"))
    )
    df = df.with_columns(total=pl.col("delta").cum_sum() + base)
    last = df.group_by("score", maintain_order=True).agg(pl.col("total").last())
    thresholds = np.concatenate([[1.1], last["score"].to_numpy()])
    totals = np.concatenate([[base], last["total"].to_numpy()])
    return thresholds, totals


def score_file_at(s: FileSweep, threshold: float, cost: CostMatrix) -> FileScore:
    """One file's NAB score with detections = rows scoring >= threshold."""
    det = s.scorable & (s.scores >= threshold)
    fp_rows = det & (s.window < 0)
    tp_rows = det & (s.window >= 0)
    score = float(s.sweep[fp_rows].sum())
    scorable_windows = {int(w) for w in s.window[s.scorable & (s.window >= 0)]}
    hit = 0
    for w in scorable_windows:
        rows = tp_rows & (s.window == w)
        if rows.any():
            score += max(float(s.sweep[rows].max()), -cost.fn)
            hit += 1
        else:
            score -= cost.fn
    return FileScore(
        s.name, score, int(tp_rows.sum()), int(fp_rows.sum()), hit, len(scorable_windows)
    )


def score_corpus(
    detections: Mapping[str, np.ndarray],
    windows: Mapping[str, Sequence[tuple[int, int]]],
    cost: CostMatrix,
    *,
    threshold: float | None = None,
    probation_percent: float = PROBATION_PERCENT,
) -> CorpusScore:
    """Score anomaly scores of every file; optimize the threshold over the corpus if not given.

    ``detections`` maps a file name to its per-row anomaly scores, ``windows`` the same names to
    their window row ranges (see :func:`window_indices`).
    """
    missing = set(detections) ^ set(windows)
    if missing:
        raise ValueError(f"scores and windows name different files: {sorted(missing)[:5]}")
    sweeps = [
        sweep_file(detections[k], windows[k], cost, name=k, probation_percent=probation_percent)
        for k in sorted(detections)
    ]
    null = -cost.fn * sum(s.n_windows for s in sweeps)
    perfect = cost.tp * sum(s.n_labelled for s in sweeps)
    if threshold is None:
        thresholds, totals = threshold_curve(sweeps, cost)
        threshold = float(thresholds[int(np.argmax(totals))])
    files = [score_file_at(s, threshold, cost) for s in sweeps]
    raw = sum(f.score for f in files)
    denom = perfect - null
    normalized = 100.0 * (raw - null) / denom if denom else 0.0
    return CorpusScore(threshold, raw, null, perfect, normalized, files)


def load_profiles(nab_root: str | Path) -> dict[str, CostMatrix]:
    with open(Path(nab_root) / "config" / "profiles.json") as f:
        raw = json.load(f)
    return {name: CostMatrix.from_profile(p) for name, p in raw.items()}


def load_corpus(nab_root: str | Path) -> tuple[dict[str, pl.DataFrame], dict[str, list]]:
    """Read every data file (timestamp, value) and the combined label windows as row ranges."""
    root = Path(nab_root)
    with open(root / "labels" / "combined_windows.json") as f:
        labels = json.load(f)
    data: dict[str, pl.DataFrame] = {}
    wins: dict[str, list] = {}
    for rel in sorted(labels):
        df = pl.read_csv(root / "data" / rel, try_parse_dates=False)
        df = df.with_columns(
            pl.col("timestamp").str.to_datetime(time_unit="us"),
            pl.col("value").cast(pl.Float64),
        )
        data[rel] = df
        wins[rel] = window_indices(df["timestamp"], labels[rel], rel)
    return data, wins
