"""The ground truth of a simulated incident: what a perfect triage would conclude.

Written as JSON *outside* the workspace so that nothing reading the workspace can see it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INCIDENT_KINDS = (
    "upstream_data",
    "feature_coverage",
    "bad_snapshot",
    "activation_blowup",
    "training_data",
    "none",
)
CAUSE = {
    "upstream_data": "upstream_data",
    "feature_coverage": "upstream_data",
    "bad_snapshot": "bad_snapshot",
    "activation_blowup": "bad_snapshot",
    "training_data": "training_data",
    "none": "none",
}


@dataclass(frozen=True)
class Truth:
    """Ground truth; field names are the JSON keys benchmarks score against."""

    kind: str
    seed: int
    metric: str | None
    onset: str | None
    model: str | None
    affected_models: list[str]
    experiment: str | None
    snapshot: str | None
    cause: str
    features: list[str]
    downstream_features: list[str]
    upstream: list[str]
    layer: str | None
    distractors: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> Truth:
        return cls(**json.loads(Path(path).read_text()))


def default_truth_path(out_dir: str | Path) -> Path:
    """`<DIR>.truth.json` next to the workspace directory, never inside it."""
    return Path(str(out_dir).rstrip("/") + ".truth.json")
