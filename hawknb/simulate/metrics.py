"""Hourly product metrics driven by the served predictions.

A model's predictions decide which ads are shown: when a prediction is far from the true
probability the ad shown is a worse one, modelled as a per-request quality factor
q = floor + (1 - floor) * exp(-alpha * |logit(pred) - logit(p_true)|) (0 for a NaN/inf
prediction: no ad is shown). Clicks,
conversions and engagement are impressions times the mean of p_true * q over the served
requests, so a degraded model moves the metrics it drives and barely the others.
"""

from __future__ import annotations

import numpy as np

ALPHA = 1.0
#: even a useless ranking shows ads that get some engagement (random allocation)
Q_FLOOR = 0.3


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def quality(pred: np.ndarray, truth: np.ndarray, link: str, spread: float) -> np.ndarray:
    """Per-request allocation quality in [0, 1] (1 = the prediction was right)."""
    pred = pred.astype(np.float64)
    finite = np.isfinite(pred)
    safe = np.where(finite, pred, 0.5)
    with np.errstate(over="ignore", invalid="ignore"):
        if link == "sigmoid":
            err = np.abs(_logit(safe) - _logit(truth))
        else:
            err = np.abs(safe - truth) / spread
        q = Q_FLOOR + (1 - Q_FLOOR) * np.exp(-ALPHA * np.minimum(err, 50.0))
    return np.where(finite, q, 0.0)


def seasonality(hours: np.ndarray, peak: float, amp: float) -> np.ndarray:
    hod = hours % 24
    dow = (hours // 24) % 7
    return (1 + amp * np.cos(2 * np.pi * (hod - peak) / 24)) * (
        1 + 0.06 * np.cos(2 * np.pi * (dow - 2) / 7)
    )


def assemble(
    rng: np.random.Generator,
    hours: int,
    segment_p: np.ndarray,
    contrib: dict[str, np.ndarray],
    *,
    noise: float = 0.02,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Metric values per (hour, segment) for the served and the counterfactual world.

    `contrib[role]` holds (2, H, S): the traffic-weighted mean of truth * q per hour and
    segment, for served (index 0) and clean (index 1) predictions, already summed over the
    models of that role with their surface shares. Both worlds get the same noise, so their
    difference is the incident alone. Returns (served, clean, segmented?) metric dicts of
    arrays (H, S); the top line is their sum over segments (ratios recomputed).
    """
    h = np.arange(hours)
    season = seasonality(h, peak=float(rng.uniform(12, 21)), amp=float(rng.uniform(0.25, 0.45)))
    base_imp = float(rng.uniform(2e5, 2e6))
    S = len(segment_p)
    eps = {}
    names = ["impressions", "clicks", "conversions", "engagement"]
    for name in names:
        eps[name] = np.exp(rng.normal(0.0, noise, size=(hours, S)))
    imp = base_imp * season[:, None] * segment_p[None, :] * eps["impressions"]
    cpc = float(rng.uniform(0.3, 1.5))
    cpa = float(rng.uniform(5.0, 30.0))
    cpe = float(rng.uniform(0.01, 0.05))
    ctr0 = float(rng.uniform(0.01, 0.03))
    out: list[dict[str, np.ndarray]] = []
    for w in range(2):
        vals = {"impressions": imp}
        if "ctr" in contrib:
            vals["clicks"] = imp * contrib["ctr"][w] * eps["clicks"]
        if "cvr" in contrib:
            vals["conversions"] = imp * ctr0 * contrib["cvr"][w] * eps["conversions"]
        if "quality" in contrib:
            vals["engagement"] = imp / 1000.0 * contrib["quality"][w] * eps["engagement"]
        rev = np.zeros_like(imp)
        rev += cpc * vals.get("clicks", 0.0)
        rev += cpa * vals.get("conversions", 0.0)
        rev += cpe * 1000.0 * vals.get("engagement", 0.0)
        vals["revenue"] = rev
        out.append(vals)
    segmented = {"revenue": True, "clicks": True}
    return out[0], out[1], segmented


def top_line(vals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Top-line series per metric (sums over segments, CTR recomputed as a ratio)."""
    tl = {k: v.sum(1) for k, v in vals.items()}
    if "clicks" in tl:
        tl["ctr"] = tl["clicks"] / tl["impressions"]
    return tl


def anomaly_strength(served: np.ndarray, clean: np.ndarray, onset: int, hours: int) -> float:
    """How clearly a top line shows the incident: the mean log-deviation from the
    counterfactual over the first day after the onset, in units of the metric's own
    hour-to-hour noise before the onset."""
    post = slice(onset, min(hours, onset + 24))
    dev = np.log(np.maximum(served[post], 1e-12) / np.maximum(clean[post], 1e-12))
    pre = np.log(np.maximum(clean[:onset], 1e-12))
    hod = np.arange(onset) % 24
    means = np.bincount(hod, weights=pre, minlength=24) / np.maximum(
        np.bincount(hod, minlength=24), 1
    )
    resid = pre - means[hod]
    noise = float(np.std(resid)) if onset > 24 else 1.0
    return float(abs(dev.mean()) / max(noise, 1e-3))
