"""Top-line metrics: seasonal series, the incident's drop, and unrelated level shifts.

Each model moves one product metric (not written anywhere: triage must find the link by
evidence). The incident metric loses `drop` from the onset on. Distractors are level shifts in
other metrics, anywhere in the history, and optionally a dip of the incident metric on another
day. A distractor's size is set in units of its own metric's noise relative to the incident's
(`distractor_scale` 1.0 = as surprising as the incident), so a shift in a quiet ratio metric is
not accidentally ten times more severe than intended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .knobs import Knobs
from .world import UNRELATED_METRICS, World

RATE_METRICS = {"search_success_rate", "crash_free_share"}
SEGMENTS = {"ios": 0.45, "android": 0.4, "web": 0.15}


@dataclass(frozen=True)
class Profile:
    level: float
    amp: float  # daily seasonal amplitude (relative)
    peak_h: float
    sigma: float  # relative noise per point
    weekend: float  # weekend multiplier


def profiles(world: World, knobs: Knobs, rng: np.random.Generator) -> dict[str, Profile]:
    """The metrics written (every model's metric and three unrelated ones) and their shapes."""
    names = {m.metric for m in world.models}
    names |= {str(x) for x in rng.choice(UNRELATED_METRICS, 3, replace=False)}
    out = {}
    for name in sorted(names):
        dip = knobs.weekly_dip * float(rng.uniform(0.5, 1.0))
        noise = knobs.metric_noise * float(rng.uniform(0.8, 1.25))
        if name == "p95_latency_ms":
            p = Profile(rng.uniform(180, 420), rng.uniform(0.05, 0.15), 0, 1.5 * noise, 1 + dip / 2)
        elif name in RATE_METRICS:
            p = Profile(
                rng.uniform(0.55, 0.97), rng.uniform(0.005, 0.02), 0, 0.4 * noise, 1 - dip / 5
            )
        else:
            p = Profile(10 ** rng.uniform(3, 5), rng.uniform(0.2, 0.45), 0, noise, 1 - dip)
        out[name] = Profile(p.level, p.amp, float(rng.uniform(12, 21)), p.sigma, p.weekend)
    return out


def _series(p: Profile, t: np.ndarray, weekday0: int, rng: np.random.Generator) -> np.ndarray:
    hour = (t / 3600.0) % 24
    weekday = (np.floor(t / 86400.0) + weekday0) % 7  # 0 = Monday
    season = 1 + p.amp * np.cos(2 * np.pi * (hour - p.peak_h) / 24)
    weekend = np.where(weekday >= 5, p.weekend, 1.0)
    return p.level * season * weekend * (1 + p.sigma * rng.standard_normal(len(t)))


def distractors(
    world: World,
    knobs: Knobs,
    prof: dict[str, Profile],
    target_metric: str,
    onset_s: float,
    rng: np.random.Generator,
) -> list[dict]:
    """Unrelated level shifts: metric, start, end (None: persists), signed relative size."""
    total = world.slots * world.slot_s
    pool = [m for m in prof if m != target_metric]
    z = knobs.drop / prof[target_metric].sigma  # the incident's size in its own noise units
    out = []
    for _ in range(knobs.distractors if pool else 0):
        metric = str(rng.choice(pool))
        start = float(rng.uniform(86400, total - 3 * 3600))
        end = None if rng.random() < 0.3 else start + float(rng.uniform(3, 30)) * 3600
        size = min(
            0.5, knobs.distractor_scale * z * prof[metric].sigma * float(rng.uniform(1, 1.3))
        )
        sign = 1.0 if metric == "p95_latency_ms" else float(rng.choice([-1.0, -1.0, 1.0]))
        out.append({"metric": metric, "start_s": start, "end_s": end, "size": sign * size})
    if knobs.same_metric_distractor:
        day = onset_s / 86400
        choices = [d for d in range(1, int(total // 86400) - 1) if abs(d + 0.5 - day) > 1.5]
        d = int(rng.choice(choices))
        start = d * 86400 + float(rng.uniform(0, 18)) * 3600
        size = knobs.drop * knobs.distractor_scale * float(rng.uniform(1.0, 1.3))
        end = start + float(rng.uniform(4, 12)) * 3600
        out.append({"metric": target_metric, "start_s": start, "end_s": end, "size": -size})
    return out


def metrics(
    world: World,
    prof: dict[str, Profile],
    target_metric: str,
    onset_s: float,
    damage: float,
    shifts: list[dict],
    rng: np.random.Generator,
) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(metric, segment, t seconds, value) series; `damage` is the incident's relative loss."""
    t = np.arange(world.slots) * float(world.slot_s)
    out = []
    for name, p in prof.items():
        v = _series(p, t, world.weekday0, rng)
        factor = np.ones_like(t)
        if name == target_metric:
            ramp = np.clip((t + world.slot_s - onset_s) / world.slot_s, 0.0, 1.0)
            factor *= 1 - damage * ramp
        for s in shifts:
            if s["metric"] == name:
                on = (t >= s["start_s"]) & ((t < s["end_s"]) if s["end_s"] else True)
                factor = np.where(on, factor * (1 + s["size"]), factor)
        v = v * factor
        out.append((name, "all", t, v))
        if name not in RATE_METRICS and name != "p95_latency_ms":
            for seg, share in SEGMENTS.items():
                out.append((name, seg, t, v * share * (1 + p.sigma * rng.standard_normal(len(t)))))
    return out
