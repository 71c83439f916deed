"""The incident simulator: an ads-like system with planted faults and their ground truth.

`simulate(out_dir, incident, seed)` writes a complete workspace (every table of the contract,
lineage, exported snapshots) and returns the `Truth`, also written as JSON next to -- never
inside -- the workspace. This package imports only the workspace contract, never the kernels
or the triage, so it cannot "know" the answers the triage computes.
"""

from .truth import CAUSE, INCIDENT_KINDS, Truth, default_truth_path
from .writer import simulate

__all__ = ["CAUSE", "INCIDENT_KINDS", "Truth", "default_truth_path", "simulate"]
