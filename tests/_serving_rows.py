"""Hand-built serving rows of one model, for tests whose answer is known by construction:
a snapshot on one arm, at a steady rate, with beta(2, 8) predictions and some rows saturated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from hawknb.workspace import contract as c


def serving_rows(
    rng: np.random.Generator,
    start: datetime,
    hours: float,
    arm: str,
    snap: str,
    per_hour: float = 60,
    *,
    broken: float = 0.0,
    broken_every: int = 0,
    evenly: bool = False,
) -> pl.DataFrame:
    """Rows of ``snap`` on ``arm`` over ``hours`` from ``start``; a ``broken`` share of them
    (at random) or every ``broken_every``-th of them (exactly) saturated at 0.9999; served at
    random times with random predictions, or ``evenly``: at evenly spaced times, with predictions
    at the distribution's evenly spaced quantiles in a random order (so that how many rows, and
    how many tail rows, fall in a span is known, not a draw)."""
    n = int(hours * per_hour)
    at = np.arange(n) * (3600 / per_hour) if evenly else np.sort(rng.uniform(0, hours * 3600, n))
    ts = [start + timedelta(seconds=float(s)) for s in at]
    if evenly:
        p = rng.permutation(np.quantile(rng.beta(2, 8, 100_000), (np.arange(n) + 0.5) / n))
    else:
        p = rng.beta(2, 8, n)
    if broken:
        p[rng.random(n) < broken] = 0.9999
    if broken_every:
        p[::broken_every] = 0.9999
    return pl.DataFrame(
        {
            c.TS: ts,
            c.MODEL: ["ranker"] * n,
            c.EXPERIMENT: [arm] * n,
            c.SNAPSHOT: [snap] * n,
            c.PREDICTION: p,
        }
    )


@dataclass
class RowsWorkspace:
    """What the row-evidence functions read of a workspace: its serving rows."""

    serving: pl.LazyFrame
