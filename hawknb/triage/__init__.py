"""The triage layer: walks the decision tree over kernels and records findings."""

from .findings import STEPS, Finding, Verdict
from .investigation import Investigation
from .run import triage

__all__ = ["STEPS", "Finding", "Investigation", "Verdict", "triage"]
