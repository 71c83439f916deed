"""Competing explanations of an incident, each with the evidence for and against it.

The walk does not commit to the first branch that looks plausible: every cause it can
examine (each snapshot rolled out near the onset, a data break, nothing at all) becomes a
`Hypothesis` with a support score built from the evidence it explains and the evidence
against it, and the verdict is the best supported one. The runner-up is kept so that the
findings can say why not the alternative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .findings import Cause, Finding, Verdict, jsonable

#: tie-break when two hypotheses have the same support: the more specific explanation first
_SPECIFICITY = {"bad_snapshot": 0, "training_data": 1, "upstream_data": 2, "none": 3}


@dataclass
class Hypothesis:
    """One candidate verdict and its support (0..1, before calibration)."""

    cause: Cause
    support: float
    model: str | None = None
    experiment: str | None = None
    snapshot: str | None = None
    layer: str | None = None
    features: list[str] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    summary: str = ""
    #: the share of the support that the window choice left (`run._window_doubt`: 1 when the
    #: window is surely the incident); support / window is how well the cause explains the
    #: window, window how surely the window is an incident at all
    window: float = 1.0
    evidence_for: list[str] = field(default_factory=list)
    evidence_against: list[str] = field(default_factory=list)
    #: how strongly something found inside a named snapshot (bad activations, weights far
    #: beyond their usual drift, anomalous training data) explains it, 0 when nothing was;
    #: None for hypotheses that name no snapshot
    mechanism: float | None = None
    #: the snapshot diagnosis behind a snapshot hypothesis, and its step findings
    diagnosis: Any = field(default=None, repr=False)
    findings: list[Finding] = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        what = f"{self.cause}"
        if self.snapshot:
            what += f" ({self.snapshot})"
        elif self.features and self.cause == "upstream_data":
            what += f" ({', '.join(self.features[:2])})"
        return what

    def fill(self, v: Verdict) -> None:
        """Write this hypothesis into the verdict (metric and onset are the window's)."""
        v.cause = self.cause
        v.model = self.model
        v.experiment = self.experiment
        v.snapshot = self.snapshot
        v.layer = self.layer
        v.features = list(self.features[:10])
        v.upstream = list(self.upstream)
        v.summary = self.summary

    def brief(self) -> dict[str, Any]:
        """A JSON-safe summary for findings."""
        return jsonable(
            {
                "cause": self.cause,
                "support": round(self.support, 3),
                "model": self.model,
                "snapshot": self.snapshot,
                "layer": self.layer,
                "features": self.features[:5],
                "upstream": self.upstream[:3],
                "for": self.evidence_for[:4],
                "against": self.evidence_against[:4],
            }
        )


def ranked(hypotheses: list[Hypothesis]) -> list[Hypothesis]:
    """Best supported first; ties go to the more specific cause, then to the snapshot name
    (deterministic, so the same evidence always gives the same verdict)."""
    return sorted(
        hypotheses,
        key=lambda h: (-round(h.support, 6), _SPECIFICITY[h.cause], h.snapshot or ""),
    )


def why_not(chosen: Hypothesis, other: Hypothesis) -> str:
    """One sentence: why the runner-up was not chosen."""
    against = "; ".join(other.evidence_against[:2]) or "less evidence for it"
    return (
        f"runner-up {other.label} (support {other.support:.2f} vs {chosen.support:.2f}): {against}"
    )


def hypotheses_finding(
    hyps: list[Hypothesis], metric: str, onset: datetime, windows: list[dict[str, Any]]
) -> Finding:
    """The finding that lists every hypothesis weighed, so a person sees the alternatives."""
    best = hyps[0]
    decision = f"{best.label} explains the most (support {best.support:.2f})"
    if len(hyps) > 1:
        decision += "; " + why_not(best, hyps[1])
    return Finding(
        "hypotheses",
        checked=f"{len(hyps)} competing explanation(s) of {metric} from {onset:%Y-%m-%d %H:%M} "
        f"and {len(windows)} candidate window(s)",
        decision=decision,
        confidence=best.support,
        evidence={"hypotheses": [h.brief() for h in hyps[:6]], "windows": windows[:6]},
        result=hyps,
    )
