"""The models step's data-side evidence: which model's inputs broke at the onset.

Prediction health (mean prediction, calibration, NE) is how the walk usually finds the model
behind an anomaly. A data break can slip past it: features that fall back to their default on
half the rows, or counts that shrink because a source lost rows, change *which* rows score
high while the mean prediction, on a few dozen rows an hour, stays within its noise, and the
labels that would show the lost quality arrive hours late. The inputs show such a break
plainly, so when no model's predictions explain the anomaly, the model whose inputs broke at
the onset is the suspect (see :mod:`hawknb.kernels.coverage`), and the features step and the
lineage walk take it from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from ..engine import collect
from ..kernels.coverage import InputBreak, input_breaks_many
from ..workspace import Workspace
from ..workspace import contract as c
from .findings import Finding
from .topline import Anomaly
from .walk_cache import memo

#: a model's inputs broke when at least this many of its features did
MIN_BROKEN = 3
#: the suspect's confidence approaches this as more features break
MAX_CONFIDENCE = 0.8
#: broken features at which the confidence is ~63% of MAX_CONFIDENCE
BROKEN_SCALE = 4.0


@dataclass(frozen=True)
class InputSuspect:
    """The model whose inputs broke at the onset, the experiment with most of its rows there,
    how sure (0..1), the kernel's answer for every model, and the models step's finding."""

    model: str
    experiment: str
    confidence: float
    breaks: tuple[InputBreak, ...]
    finding: Finding


def compare_window(anomaly: Anomaly) -> timedelta:
    """Six metric samples, between 1 and 6 hours: long enough for a few dozen rows a model at
    a sampled log's rate, short enough that a slow drift does not look like a step."""
    return min(max(6 * anomaly.cadence, timedelta(hours=1)), timedelta(hours=6))


def confidence(n_broken: int) -> float:
    """How sure the inputs name the model: grows with the features that broke together."""
    if n_broken < MIN_BROKEN:
        return 0.0
    return MAX_CONFIDENCE * (1.0 - math.exp(-n_broken / BROKEN_SCALE))


def model_features(ws: Workspace, cache: dict | None = None) -> dict[str, list[str]]:
    """Each model with input features -> its features; read once per walk (``cache``): without
    a features.json each model's features are found by a scan of the log."""

    def read() -> dict[str, list[str]]:
        models = {m: ws.features(m) for m in ws.models()}
        return {m: fs for m, fs in models.items() if fs}

    return memo(cache, "model-features", read)


def prefetch_breaks(ws: Workspace, anomalies: list[Anomaly], cache: dict) -> None:
    """The input breaks at every anomaly's onset into ``cache``, the log's feature columns
    decoded once per group of overlapping windows (`input_breaks_many`) rather than per
    window: the walk asks for them at a dozen onsets, mostly near one another."""
    models = model_features(ws, cache)
    todo = {}
    for a in anomalies:
        key = ("input-breaks", a.onset, compare_window(a))
        if key not in cache:
            todo[key] = (a.onset, compare_window(a))
    if not models or not todo:
        return
    found = input_breaks_many(ws.serving, models, list(todo.values()))
    for key, breaks in zip(todo, found, strict=True):
        cache[key] = tuple(breaks)


def input_suspect(
    ws: Workspace, anomaly: Anomaly, cache: dict | None = None
) -> InputSuspect | None:
    """The model whose input features broke at the anomaly's onset, or None when none did.
    ``cache``: the walk's (`prefetch_breaks`), so a window weighed again reads nothing."""
    cache = {} if cache is None else cache
    models = model_features(ws, cache)
    if not models:
        return None
    window = compare_window(anomaly)
    prefetch_breaks(ws, [anomaly], cache)
    breaks = cache[("input-breaks", anomaly.onset, window)]
    best = breaks[0]
    conf = confidence(best.n_broken)
    if conf <= 0:
        return None
    experiment = busiest_experiment(ws, best.model, anomaly, window, cache)
    others = [f"{b.model} ({b.n_broken})" for b in breaks[1:] if b.n_broken >= MIN_BROKEN]
    finding = Finding(
        "models",
        checked=f"the input features of {len(models)} model(s): a step at the onset in each "
        f"feature's distribution or default/missing share, against its own earlier "
        f"{window} steps",
        decision=f"no model's prediction health moved clearly, but {best.n_broken} of "
        f"{best.model}'s {best.n_features} input features broke at the onset "
        f"({', '.join(best.top(3))})"
        + (f"; also broken: {', '.join(others)}" if others else "")
        + "; check its snapshots and its features' upstream",
        confidence=conf,
        evidence={
            "model": best.model,
            "experiment": experiment,
            "input_breaks": [
                {"model": b.model, "broken": b.n_broken, "features": b.n_features, "top": b.top()}
                for b in breaks
            ],
            "window": str(window),
        },
        next_step="snapshot",
    )
    return InputSuspect(best.model, experiment, conf, breaks, finding)


def busiest_experiment(
    ws: Workspace, model: str, anomaly: Anomaly, window: timedelta, cache: dict | None = None
) -> str:
    """The experiment with most of the model's rows in the window after the onset
    (``cache``: asked once per model and window in a walk, it is a scan of the log)."""

    def read() -> str:
        during = (pl.col(c.TS) >= anomaly.onset) & (pl.col(c.TS) < anomaly.onset + window)
        top = collect(
            ws.serving.filter((pl.col(c.MODEL) == model) & during)
            .group_by(c.EXPERIMENT)
            .agg(pl.len().alias("n"))
            .sort(["n", c.EXPERIMENT], descending=[True, False])
            .head(1)
        )
        return str(top[c.EXPERIMENT][0]) if top.height else ""

    return memo(cache, ("busiest", model, anomaly.onset, window), read)


__all__ = [
    "InputSuspect",
    "compare_window",
    "confidence",
    "input_suspect",
    "model_features",
    "prefetch_breaks",
]
