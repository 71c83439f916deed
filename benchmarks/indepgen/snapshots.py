"""Snapshots: trained (warm-started) on sampled partitions, with their training metadata.

A model's snapshots form a chain: a base trained from scratch before the log starts, then each
later one fine-tuned from its predecessor on a newer window of daily partitions. The training
table reports every partition's row count and label mean; a snapshot trained on corrupted
partitions really saw the corrupted labels, so its served predictions carry the damage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from . import models as nets
from .world import Model, World, latent_block, observe, true_logit


@dataclass
class Snap:
    model: str
    name: str
    net: nn.Module
    published_s: float  # seconds after the log start
    train_days: tuple[int, int]  # [lo, hi) in days after the log start
    experiment: str | None
    losses: list[float]
    fold: tuple[np.ndarray, np.ndarray]
    bad_layer: str | None = None
    notes: dict = field(default_factory=dict)


@dataclass
class Chain:
    """Snapshot names for one model, numbered like a build system would."""

    prefix: str
    build: int

    def next(self, day: int, start: np.datetime64) -> str:
        self.build += int(np.random.default_rng(self.build).integers(3, 40))
        date = (start + np.timedelta64(day, "D")).astype("datetime64[D]").astype(str)
        return f"{self.prefix}{date.replace('-', '')[2:]}-b{self.build:04d}"


def training_rows(
    world: World,
    model: Model,
    days: tuple[int, int],
    n: int,
    rng: np.random.Generator,
    corrupt: dict[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the partitions in [lo, hi): served features and labels (maybe corrupted)."""
    day = rng.uniform(days[0], days[1], n)
    lat = latent_block(world, model.features, day, rng)
    x = observe(world, model.features, lat)
    p = 1.0 / (1.0 + np.exp(-true_logit(model, model.features, lat)))
    y = (rng.random(n) < p).astype(np.float64)
    for d, rate in (corrupt or {}).items():
        rows = np.floor(day) == d
        y[rows] = np.maximum(y[rows], (rng.random(int(rows.sum())) < rate).astype(np.float64))
    return x, y


def train(
    world: World,
    model: Model,
    name: str,
    prev: Snap | None,
    days: tuple[int, int],
    published_s: float,
    rng: np.random.Generator,
    corrupt: dict[int, float] | None = None,
    experiment: str | None = None,
) -> Snap:
    """Train (or fine-tune from `prev`) one snapshot on the partitions in `days`."""
    x, y = training_rows(world, model, days, 20000, rng, corrupt)
    seed = int(rng.integers(1 << 30))
    if prev is None:
        net = nets.new_net(model.arch, len(model.features), seed)
        net, losses, fold = nets.fit(net, x, y, 200, seed)
    else:
        net = type(prev.net)(len(model.features))
        net.load_state_dict(prev.net.state_dict())
        net, losses, fold = nets.fit(net, x, y, 60, seed, fold=prev.fold)
    return Snap(model.name, name, net, published_s, days, experiment, losses, fold)


def curve_rows(snap: Snap) -> list[dict]:
    """Training curve as logged: the mean loss of every 10 steps, steps counted x25."""
    out = []
    losses = np.asarray(snap.losses)
    for i in range(0, len(losses) - 9, 10):
        out.append(
            {
                "model": snap.model,
                "snapshot": snap.name,
                "step": (i + 10) * 25,
                "loss": float(losses[i : i + 10].mean()),
            }
        )
    return out


def partitions(
    world: World, model: Model, rng: np.random.Generator, corrupt: dict[int, float]
) -> list[dict]:
    """The model's daily training partitions from 30 days before the log to its end."""
    lat = latent_block(world, model.features, np.zeros(4000), rng)
    base = float((1 / (1 + np.exp(-true_logit(model, model.features, lat)))).mean())
    scale = float(rng.uniform(2e5, 3e6))
    out = []
    n_days = world.slots * world.slot_s // 86400
    for d in range(-30, n_days + 1):
        date = (world.start + np.timedelta64(d, "D")).astype("datetime64[D]")
        weekday = (date.astype(int) + 3) % 7  # 1970-01-01 was a Thursday
        rows = scale * (0.85 if weekday >= 5 else 1.0) * (1 + 0.03 * rng.standard_normal())
        mean = base * (1 + 0.03 * rng.standard_normal())
        if d in corrupt:
            mean = mean + (1 - mean) * corrupt[d]
        out.append(
            {
                "model": model.name,
                "partition": date.astype(object),
                "rows": int(rows),
                "label_mean": mean,
            }
        )
    return out
