"""An `Investigation`: the findings of one walk down the decision tree, and its verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from .findings import Finding, Verdict
from .results import legacy_context

if TYPE_CHECKING:
    from ..workspace import Workspace

R = TypeVar("R")

_ICON = {"done": "✔", "skipped": "–", "warning": "!", "failed": "✘"}


@dataclass
class Investigation:
    """The result of `hawknb.triage`: one finding per step walked and the verdict.

    The steps' typed results (`hawknb.triage.results`: the metric series and its anomalies,
    the health table, the feature ranking, the competing hypotheses, ...) are kept by type:
    ``inv.get(FeaturesResult)``.
    """

    workspace: Workspace | None
    findings: list[Finding] = field(default_factory=list)
    verdict: Verdict = field(default_factory=Verdict)
    results: dict[type, Any] = field(default_factory=dict, repr=False)

    def finding(self, step: str) -> Finding | None:
        """The finding of a step, or None if the walk did not reach it."""
        return next((f for f in self.findings if f.step == step), None)

    def record(self, result: Any) -> None:
        """Keep a step's typed result (one per type: a later one replaces the earlier)."""
        self.results[type(result)] = result

    def get(self, kind: type[R]) -> R | None:
        """The step result of this type, or None when the walk did not produce one."""
        return self.results.get(kind)

    @property
    def context(self) -> MappingProxyType[str, Any]:
        """Read-only string-keyed view of the results, for notebooks written against the old
        ``context`` dict; new code asks `get` for a result type."""
        return MappingProxyType(legacy_context(self.results))

    def to_dict(self) -> dict[str, Any]:
        out = self.verdict.to_dict()
        out["findings"] = [f.to_dict() for f in self.findings]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self, evidence: bool = False) -> str:
        """Ticket-ready Markdown of the walk (see :mod:`hawknb.triage.markdown`)."""
        from .markdown import investigation

        return investigation(self, with_evidence=evidence)

    def summary_text(self) -> str:
        """A few plain lines for the terminal."""
        v = self.verdict
        out = [f"verdict: {v.cause}  (confidence {v.confidence:.2f})"]
        if v.summary:
            out.append(f"  {v.summary}")
        for key in ("metric", "onset", "model", "experiment", "snapshot", "layer"):
            val = getattr(v, key)
            if val is not None:
                out.append(f"  {key:<10} {val.isoformat() if hasattr(val, 'isoformat') else val}")
        if v.features:
            out.append(f"  {'features':<10} {', '.join(v.features[:5])}")
        if v.upstream:
            out.append(f"  {'upstream':<10} {' -> '.join(v.upstream[:3])}")
        out.append("steps:")
        for f in self.findings:
            out.append(f"  {_ICON.get(f.status, '')} {f.title}: {f.decision}")
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()
