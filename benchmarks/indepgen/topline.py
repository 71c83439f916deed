"""Top-line metrics: seasonal series, the incident's drop, and unrelated level shifts.

Each model moves one product metric (not written anywhere: triage must find the link by
evidence). The incident metric loses `drop` from the onset on; distractors are level shifts in
other metrics, anywhere in the history, and optionally a dip of the incident metric on another
day, sized relative to the incident's drop.
"""

from __future__ import annotations

import numpy as np

from .knobs import Knobs
from .world import UNRELATED_METRICS, World

RATE_METRICS = {"search_success_rate", "crash_free_share"}
SEGMENTS = {"ios": 0.45, "android": 0.4, "web": 0.15}


def _shape(metric: str, t: np.ndarray, weekday0: int, rng: np.random.Generator) -> np.ndarray:
    hour = (t / 3600.0) % 24
    weekday = (np.floor(t / 86400.0) + weekday0) % 7  # 0 = Monday
    peak = rng.uniform(12, 21)
    if metric == "p95_latency_ms":
        level, amp, sigma = rng.uniform(180, 420), rng.uniform(0.05, 0.15), rng.uniform(0.02, 0.04)
    elif metric in RATE_METRICS:
        level, amp, sigma = (
            rng.uniform(0.55, 0.97),
            rng.uniform(0.005, 0.02),
            rng.uniform(0.003, 0.008),
        )
    else:
        level, amp, sigma = (
            10 ** rng.uniform(3, 5),
            rng.uniform(0.2, 0.45),
            rng.uniform(0.01, 0.025),
        )
    season = 1 + amp * np.cos(2 * np.pi * (hour - peak) / 24)
    dip = rng.uniform(0.995, 1.0) if metric in RATE_METRICS else rng.uniform(0.9, 0.98)
    weekend = np.where(weekday >= 5, dip, 1.0)
    noise = 1 + sigma * rng.standard_normal(len(t))
    return level * season * weekend * noise


def distractors(
    world: World, knobs: Knobs, target_metric: str, onset_s: float, rng: np.random.Generator
) -> list[dict]:
    """Unrelated level shifts: metric, start, end (None: persists), signed relative size."""
    total = world.slots * world.slot_s
    others = [m.metric for m in world.models if m.metric != target_metric]
    pool = others + list(UNRELATED_METRICS)
    out = []
    for _ in range(knobs.distractors):
        metric = str(rng.choice(pool))
        start = float(rng.uniform(86400, total - 3 * 3600))
        end = None if rng.random() < 0.3 else start + float(rng.uniform(3, 30)) * 3600
        size = knobs.drop * knobs.distractor_scale * float(rng.uniform(1.0, 1.5))
        sign = 1.0 if metric == "p95_latency_ms" else float(rng.choice([-1.0, -1.0, 1.0]))
        out.append({"metric": metric, "start_s": start, "end_s": end, "size": sign * size})
    if knobs.same_metric_distractor:
        day = onset_s / 86400
        choices = [d for d in range(1, int(total // 86400) - 1) if abs(d + 0.5 - day) > 1.5]
        d = int(rng.choice(choices))
        start = d * 86400 + float(rng.uniform(0, 18)) * 3600
        size = knobs.drop * knobs.distractor_scale * float(rng.uniform(1.0, 1.3))
        out.append(
            {
                "metric": target_metric,
                "start_s": start,
                "end_s": start + float(rng.uniform(4, 12)) * 3600,
                "size": -size,
            }
        )
    return out


def metrics(
    world: World,
    knobs: Knobs,
    target_metric: str,
    onset_s: float,
    damage: float,
    shifts: list[dict],
    rng: np.random.Generator,
) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(metric, segment, t seconds, value) series; `damage` is the incident's relative loss."""
    t = np.arange(world.slots) * float(world.slot_s)
    names = sorted(
        {m.metric for m in world.models} | set(rng.choice(UNRELATED_METRICS, 3, replace=False))
    )
    out = []
    for name in names:
        v = _shape(name, t, world.weekday0, rng)
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
                out.append((name, seg, t, v * share * (1 + 0.02 * rng.standard_normal(len(t)))))
    return out
