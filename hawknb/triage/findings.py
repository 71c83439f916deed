"""What a triage step found, and the verdict the walk arrives at.

A `Finding` is the unit the notebook, the CLI, the report and the navigator widget show: what
was checked, the evidence, the decision and where the walk goes next. Kernel results that a view
can draw ride along in `result` (never serialized to JSON; `evidence` is the JSON-safe summary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

Status = Literal["done", "skipped", "warning", "failed"]
Cause = Literal["upstream_data", "bad_snapshot", "training_data", "none"]

#: the decision-tree steps, in walking order; `parent` makes the tree the navigator draws
STEPS: dict[str, dict[str, str | None]] = {
    "topline": {"title": "Top-line metric anomaly", "parent": None},
    "models": {"title": "Models and experiments whose predictions degraded", "parent": "topline"},
    "snapshot": {"title": "Snapshot rollout at the onset?", "parent": "models"},
    "features": {"title": "Features responsible for the prediction shift", "parent": "snapshot"},
    "lineage": {"title": "Upstream lineage root cause", "parent": "features"},
    "weights": {"title": "Snapshot weights vs stable snapshots", "parent": "snapshot"},
    "activations": {
        "title": "Activations: NaN/extreme tensors in the model graph",
        "parent": "weights",
    },
    "training": {"title": "Training data of the snapshot", "parent": "snapshot"},
    "hypotheses": {"title": "Competing explanations (why not the runner-up)", "parent": None},
    "verdict": {"title": "Verdict", "parent": None},
}


def jsonable(value: Any) -> Any:
    """Turn evidence into JSON-safe values (datetimes as ISO, NaN/inf as null)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item())
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


@dataclass
class Finding:
    """One step of the walk."""

    step: str
    checked: str
    decision: str
    status: Status = "done"
    confidence: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    next_step: str | None = None
    #: kernel result(s) the views draw; not part of the JSON
    result: Any = field(default=None, repr=False, compare=False)
    seconds: float = 0.0

    @property
    def title(self) -> str:
        return str(STEPS.get(self.step, {}).get("title") or self.step)

    @property
    def parent(self) -> str | None:
        parent = STEPS.get(self.step, {}).get("parent")
        return str(parent) if parent else None

    def to_markdown(self, level: int = 4, evidence: bool = True) -> str:
        """Markdown of this step (see :func:`hawknb.triage.markdown.finding`, the one renderer);
        ``level`` is the heading depth, ``evidence`` adds the evidence tables."""
        from .markdown import finding

        return finding(self, level=level, with_evidence=evidence)

    def to_dict(self, timings: bool = False) -> dict[str, Any]:
        """JSON-safe fields; ``seconds`` (the step's run time) only when ``timings``, so that
        two runs on the same workspace give the same JSON."""
        out = jsonable(
            {
                "step": self.step,
                "title": self.title,
                "status": self.status,
                "checked": self.checked,
                "decision": self.decision,
                "confidence": None if self.confidence is None else round(self.confidence, 3),
                "next_step": self.next_step,
                "evidence": self.evidence,
            }
        )
        if timings:
            out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class Verdict:
    """Where the walk ended. Field names are the JSON contract of `hawknb triage --json`."""

    metric: str | None = None
    onset: datetime | None = None
    model: str | None = None
    experiment: str | None = None
    snapshot: str | None = None
    cause: Cause = "none"
    features: list[str] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    layer: str | None = None
    confidence: float = 0.0
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "metric": self.metric,
                "onset": self.onset,
                "model": self.model,
                "experiment": self.experiment,
                "snapshot": self.snapshot,
                "cause": self.cause,
                "features": list(self.features),
                "upstream": list(self.upstream),
                "layer": self.layer,
                "confidence": round(float(self.confidence), 3),
                "summary": self.summary,
            }
        )
