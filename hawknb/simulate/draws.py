"""What the simulator draws before it writes anything: the hidden true models, the training
partitions' label means, and every snapshot's clean and served weights.

Each phase takes its own seeded random stream (`rng(seed, k)`), and phases that share a stream
(partitions, snapshots, training curves all draw from stream 5) must keep their order: a
workspace is a pure function of its seed, and the held-out benchmark seeds rely on that.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from .incidents import Plan
from .models import Weights, calibrate, corrupt, forward_np, perturb, plant_blowup, true_model
from .serving import FeatureGen, World
from .system import System

TRAIN_DAYS = 3

_ROLE = {
    "ctr": {"link": "sigmoid", "base": (0.02, 0.05), "spread": 1.0},
    "cvr": {"link": "sigmoid", "base": (0.06, 0.15), "spread": 0.9},
    "quality": {"link": "identity", "base": (0.4, 0.6), "spread": 0.15},
}


def rng(seed: int, *key: int) -> np.random.Generator:
    """The random stream of one phase (or one (hour, model, experiment) cell) of a seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


@dataclass
class Snap:
    model: int
    exp: int
    day: int  # publish day (-1: serving before the window)
    name: str
    published: dt.datetime
    served: Weights
    clean: Weights
    shift: float


@dataclass
class HiddenModels:
    """Per model: the clean calibration sample, the true weights that make labels, the base
    rate, the label spread and the link (lists indexed by model)."""

    x_cal: list[np.ndarray]
    truths: list[Weights]
    base: list[float]
    spread: list[float]
    links: list[str]


@dataclass
class Partitions:
    """Per (model, day): the label mean as served to training (faulty where the incident says),
    the clean label mean, and the partition's row count."""

    label_mean: dict[tuple[int, int], float]
    clean_label_mean: dict[tuple[int, int], float]
    part_rows: dict[tuple[int, int], int]


def fit_hidden_models(
    system: System, gens: list[FeatureGen], cal_rng: np.random.Generator
) -> HiddenModels:
    """Fit each model's hidden truth on a clean day of features, so base rates hold."""
    hidden = HiddenModels([], [], [], [], [])
    for mi, m in enumerate(system.models):
        xs = [gens[mi].draw(cal_rng, 100, h, World()).clean for h in range(24)]
        x = np.concatenate(xs).astype(np.float64)
        role = _ROLE[m.role]
        b = float(cal_rng.uniform(*role["base"]))
        w = true_model(
            cal_rng, m.importance, m.hidden, x, link=role["link"], base=b, spread=role["spread"]
        )
        out = forward_np(w, x)
        mean_truth = (
            float(np.mean(1 / (1 + np.exp(-out))))
            if role["link"] == "sigmoid"
            else float(out.mean())
        )
        hidden.x_cal.append(x)
        hidden.truths.append(w)
        hidden.base.append(mean_truth)
        hidden.spread.append(role["spread"])
        hidden.links.append(role["link"])
    return hidden


def draw_partitions(
    snap_rng: np.random.Generator, p: Plan, hidden: HiddenModels, days: int
) -> Partitions:
    """Daily training partitions from TRAIN_DAYS before the window; a training_data incident
    scales one day's labels for the culprit model."""
    parts = Partitions({}, {}, {})
    for mi in range(len(hidden.base)):
        for d in range(-TRAIN_DAYS - 1, days):
            lm = hidden.base[mi] * (1 + snap_rng.normal(0, 0.01))
            parts.clean_label_mean[(mi, d)] = lm
            if (
                p.kind == "training_data"
                and p.culprit
                and p.culprit[0] == mi
                and d == p.snapshot_fault["bad_day"]
            ):
                lm = lm * p.snapshot_fault["factor"]
                if hidden.links[mi] == "sigmoid":
                    lm = min(lm, 0.9)
            parts.label_mean[(mi, d)] = lm
            parts.part_rows[(mi, d)] = int(snap_rng.integers(200_000, 2_000_000))
    return parts


def calibration_shift(hidden: HiddenModels, mi: int, d: int, means: dict) -> float:
    """The output shift a snapshot trained on days d-TRAIN_DAYS..d-1 learns from their labels."""
    win = np.mean([means[(mi, k)] for k in range(d - TRAIN_DAYS, d)])
    base = hidden.base[mi]
    if hidden.links[mi] == "sigmoid":
        return float(np.log(win / (1 - win)) - np.log(base / (1 - base)))
    return float(win - base)


def draw_snapshots(
    snap_rng: np.random.Generator,
    p: Plan,
    hidden: HiddenModels,
    parts: Partitions,
    start: dt.datetime,
    days: int,
) -> tuple[dict[tuple[int, int, int], Snap], dict]:
    """Every (model, experiment, day) snapshot the plan rolls out, plus the one serving before
    the window; the incident's culprit gets its fault. Returns the snapshots and the fault's
    details for the truth."""
    n_models = len(hidden.truths)
    arm_truth = {}
    for mi in range(n_models):
        arm_truth[(mi, 0)] = perturb(snap_rng, hidden.truths[mi], 0.005)
        arm_truth[(mi, 1)] = perturb(snap_rng, hidden.truths[mi], 0.015)
    snaps: dict[tuple[int, int, int], Snap] = {}
    fault_detail: dict = {}
    for mi in range(n_models):
        for e in range(2):
            for d in [-1, *range(days)]:
                if d >= 0 and (mi, e, d) not in p.starts:
                    continue
                hod = p.starts.get((mi, e, d), int(snap_rng.integers(1, 19)))
                pub = (
                    start
                    + dt.timedelta(days=d, hours=hod)
                    - dt.timedelta(minutes=int(snap_rng.integers(30, 180)))
                )
                w = perturb(snap_rng, arm_truth[(mi, e)], 0.008)
                sh = calibration_shift(hidden, mi, d, parts.clean_label_mean)
                clean_w = calibrate(w, sh)
                served_w = clean_w
                if p.culprit == (mi, e, d):
                    served_w, sh, fault_detail = _plant_fault(
                        snap_rng, p, hidden, parts, start, w, clean_w, sh, mi, d
                    )
                day = start + dt.timedelta(days=d)
                name = f"{day:%m%d}-{int(snap_rng.integers(16**4)):04x}"
                snaps[(mi, e, d)] = Snap(mi, e, d, name, pub, served_w, clean_w, sh)
    return snaps, fault_detail


def _plant_fault(
    snap_rng: np.random.Generator,
    p: Plan,
    hidden: HiddenModels,
    parts: Partitions,
    start: dt.datetime,
    w: Weights,
    clean_w: Weights,
    sh: float,
    mi: int,
    d: int,
) -> tuple[Weights, float, dict]:
    """The culprit snapshot's served weights, its calibration shift and the fault's details."""
    if p.kind == "bad_snapshot":
        sf = p.snapshot_fault
        served, detail = corrupt(snap_rng, clean_w, sf["subtype"], sf["layer"])
        return served, sh, detail
    if p.kind == "activation_blowup":
        j = p.snapshot_fault["feature_pos"]
        col = hidden.x_cal[mi][:, j]
        threshold = float(np.quantile(col, p.snapshot_fault["quantile"]))
        served, detail = plant_blowup(snap_rng, clean_w, j, threshold, float(col.std()))
        detail.update(threshold=threshold, quantile=p.snapshot_fault["quantile"])
        return served, sh, detail
    if p.kind == "training_data":
        sh = calibration_shift(hidden, mi, d, parts.label_mean)
        detail = {
            "bad_partition": str((start + dt.timedelta(days=p.snapshot_fault["bad_day"])).date()),
            "label_factor": p.snapshot_fault["factor"],
            "calibration_shift": sh,
        }
        return calibrate(w, sh), sh, detail
    return clean_w, sh, {}
