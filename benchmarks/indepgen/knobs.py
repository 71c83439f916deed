"""Scenario knobs and the difficulty presets that set them.

Every trait of the incidents the generator can plant is one field here, so a difficulty curve
can move one knob while the others stay at a preset. `resolve` draws the ranged knobs for one
seed: a preset gives ranges, an override pins a value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

KINDS = (
    "upstream_data",
    "feature_coverage",
    "bad_snapshot",
    "activation_blowup",
    "training_data",
    "none",
)
DIFFICULTIES = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Knobs:
    """One scenario's settings (all drawn; see PRESETS for the ranges per difficulty)."""

    history_days: int = 14  # length of the metric / serving history
    cadence_min: int = 30  # metric cadence in minutes (lineage stats are hourly)
    n_models: int = 3
    features_min: int = 150  # features per model, drawn in [features_min, features_max]
    features_max: int = 300
    rows_per_slot: int = 24  # sampled serving rows per model per metric slot
    drop: float = 0.05  # relative top-line drop of the incident metric
    label_delay_h: float = 6.0  # mean hours before a label arrives
    hours_after_onset: float = 16.0  # how long the log runs past the onset
    distractors: int = 2  # unrelated level shifts (other metrics / other days)
    same_metric_distractor: bool = False  # one distractor hits the incident metric on another day
    distractor_scale: float = 1.0  # distractor size relative to the incident's
    benign_rollout: bool = True  # a healthy snapshot rolls out in the incident hour
    canary_share: float = 0.2  # bad snapshot's share of its arm's traffic
    arm_split: float = 0.5  # the treatment arm's share of a model's traffic
    blowup_rows: float = 0.08  # share of the bad snapshot's rows that trigger the blow-up
    break_loss: float = 0.6  # how much of an upstream source is lost in a break
    coverage_loss: float = 0.6  # share of rows whose feature falls back to its default
    lineage_noise: float = 0.04  # relative noise of lineage row counts
    metric_noise: float = 0.015  # relative noise per point of count metrics (ratios: 0.4x)
    weekly_dip: float = 0.03  # how much lower weekends are (count metrics)
    tz: str = "UTC"  # time zone the timestamps are written in (converted on read)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ranges are (lo, hi) drawn uniformly per seed; scalars are fixed
PRESETS: dict[str, dict[str, Any]] = {
    "easy": {
        "history_days": 10,
        "n_models": 2,
        "features_min": 150,
        "features_max": 180,
        "drop": (0.10, 0.15),
        "label_delay_h": (1.0, 2.0),
        "hours_after_onset": (14.0, 20.0),
        "distractors": 0,
        "same_metric_distractor": False,
        "benign_rollout": False,
        "canary_share": 1.0,
        "arm_split": 0.5,
        "blowup_rows": (0.15, 0.25),
        "break_loss": (0.85, 0.95),
        "coverage_loss": (0.85, 0.95),
        "metric_noise": 0.01,
        "weekly_dip": 0.0,
    },
    "medium": {
        "history_days": 14,
        "n_models": 3,
        "features_min": 150,
        "features_max": 300,
        "drop": (0.05, 0.08),
        "label_delay_h": (3.0, 8.0),
        "hours_after_onset": (10.0, 18.0),
        "distractors": 2,
        "same_metric_distractor": False,
        "distractor_scale": (0.6, 1.0),
        "benign_rollout": True,
        "canary_share": (0.12, 0.2),
        "arm_split": 0.5,
        "blowup_rows": (0.08, 0.12),
        "break_loss": (0.5, 0.7),
        "coverage_loss": (0.5, 0.7),
        "metric_noise": (0.01, 0.02),
        "weekly_dip": (0.02, 0.05),
    },
    "hard": {
        "history_days": 14,
        "n_models": 4,
        "features_min": 200,
        "features_max": 300,
        "drop": (0.03, 0.06),
        "label_delay_h": (8.0, 16.0),
        "hours_after_onset": (8.0, 14.0),
        "distractors": 3,
        "same_metric_distractor": True,
        "distractor_scale": (1.0, 1.6),
        "benign_rollout": True,
        "canary_share": (0.06, 0.12),
        "arm_split": 0.5,
        "blowup_rows": (0.05, 0.10),
        "break_loss": (0.3, 0.45),
        "coverage_loss": (0.3, 0.45),
        "metric_noise": (0.015, 0.025),
        "weekly_dip": (0.04, 0.08),
        "tz": "America/New_York",
    },
}


def resolve(difficulty: str, rng: Any, overrides: dict[str, Any] | None = None) -> Knobs:
    """Draw one scenario's knobs: the preset's ranges for this rng, then the overrides."""
    if difficulty not in PRESETS:
        raise ValueError(f"difficulty {difficulty!r}: expected one of {', '.join(DIFFICULTIES)}")
    names = {f.name: f for f in fields(Knobs)}
    values: dict[str, Any] = {}
    for key, spec in PRESETS[difficulty].items():
        if isinstance(spec, tuple):
            lo, hi = spec
            values[key] = float(rng.uniform(lo, hi))
        else:
            values[key] = spec
    for key, value in (overrides or {}).items():
        if key not in names:
            raise ValueError(f"unknown knob {key!r}: expected one of {', '.join(sorted(names))}")
        values[key] = value
    # coerce to the field's type (an override from the CLI arrives as a string)
    out: dict[str, Any] = {}
    for key, value in values.items():
        default = names[key].default
        if isinstance(default, bool):
            out[key] = (
                value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            )
        elif isinstance(default, int):
            out[key] = round(float(value))
        elif isinstance(default, float):
            out[key] = float(value)
        else:
            out[key] = str(value)
    return Knobs(**out)
