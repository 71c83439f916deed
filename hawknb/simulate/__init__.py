"""The incident simulator: an ads-like system with planted faults and their ground truth.

`simulate(out_dir, incident, seed)` writes a complete workspace (every table of the contract,
lineage, exported snapshots) and returns the `Truth`, also written as JSON next to -- never
inside -- the workspace. This package imports only the workspace contract, never the kernels
or the triage, so it cannot "know" the answers the triage computes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .truth import CAUSE, INCIDENT_KINDS, Truth, default_truth_path

if TYPE_CHECKING:  # pragma: no cover
    from .writer import simulate

__all__ = ["CAUSE", "INCIDENT_KINDS", "Truth", "default_truth_path", "simulate"]

# the writer pulls in polars and torch; `hawknb demo --help` and `hawknb simulate --help` only
# need the incident kinds
__getattr__, __dir__ = lazy_attributes(__name__, globals(), {"simulate": ".writer"})
