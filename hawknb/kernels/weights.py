"""Snapshot weight comparison: is this snapshot's parameter change unusual?

HawkEye compares a suspect snapshot's weights with earlier snapshots that were operationally
stable: parameters of a healthy model drift by a roughly stationary amount from one snapshot to
the next, so a tensor whose change is many times its *usual* change (or that holds NaN/inf)
points at a training problem (bad data, loss or gradient explosion) and at the layer where it
shows. The usual change is measured among the stable snapshots themselves, so no absolute
threshold tied to one model's scale is needed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch

from .graph import layer_of_parameter

__all__ = [
    "LayerSuspect",
    "TensorChange",
    "WeightComparison",
    "compare_weights",
    "program_state",
]

#: a tensor is suspect when its change is this many times its usual change ...
RATIO_THRESHOLD = 3.0
#: ... and this many robust standard deviations above it
Z_THRESHOLD = 3.5
#: without history (one stable snapshot), a relative change above this is suspect
NO_HISTORY_REL_CHANGE = 0.5
_MAD_SCALE = 1.4826


@dataclass(frozen=True)
class TensorChange:
    """One tensor of the candidate against the most recent stable snapshot."""

    name: str
    layer: str
    shape: tuple[int, ...]
    numel: int
    nan_count: int
    inf_count: int
    #: ||candidate - last stable|| / ||last stable||; inf when the candidate is not finite
    rel_change: float
    #: median relative change between consecutive stable snapshots (NaN without history)
    usual_change: float
    #: rel_change / usual_change
    ratio: float
    #: (rel_change - usual) / (1.4826 * MAD of the usual changes, floored)
    robust_z: float
    suspect: bool
    reason: str


@dataclass(frozen=True)
class LayerSuspect:
    """A module path ranked by its worst tensor."""

    layer: str
    score: float
    nan_count: int
    inf_count: int
    worst_tensor: str
    reason: str


@dataclass(frozen=True)
class WeightComparison:
    tensors: tuple[TensorChange, ...]
    #: suspect layers, most suspect first (only layers with at least one suspect tensor)
    suspect_layers: tuple[LayerSuspect, ...]
    n_stable: int
    #: tensors present in only one of candidate / last stable
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def suspect(self) -> bool:
        return bool(self.suspect_layers) or bool(self.added) or bool(self.removed)

    def frame(self) -> pl.DataFrame:
        """One row per tensor, most suspect first, for display."""
        rows = [
            {
                "tensor": t.name,
                "layer": t.layer,
                "shape": "x".join(map(str, t.shape)),
                "numel": t.numel,
                "nan_count": t.nan_count,
                "inf_count": t.inf_count,
                "rel_change": t.rel_change,
                "usual_change": t.usual_change,
                "ratio": t.ratio,
                "robust_z": t.robust_z,
                "suspect": t.suspect,
                "reason": t.reason,
            }
            for t in sorted(self.tensors, key=_tensor_score, reverse=True)
        ]
        schema = {
            "tensor": pl.String,
            "layer": pl.String,
            "shape": pl.String,
            "numel": pl.Int64,
            "nan_count": pl.Int64,
            "inf_count": pl.Int64,
            "rel_change": pl.Float64,
            "usual_change": pl.Float64,
            "ratio": pl.Float64,
            "robust_z": pl.Float64,
            "suspect": pl.Boolean,
            "reason": pl.String,
        }
        return pl.DataFrame(rows, schema=schema)


def program_state(program: Any) -> dict[str, torch.Tensor]:
    """Parameters and buffers of an ExportedProgram (or nn.Module, or a state mapping), keyed
    like ``state_dict`` so that ``net.2.weight`` names layer ``net.2``."""
    if isinstance(program, torch.export.ExportedProgram):
        out = {k: v.detach() for k, v in program.state_dict.items() if isinstance(v, torch.Tensor)}
        for k, v in (getattr(program, "constants", {}) or {}).items():
            if isinstance(v, torch.Tensor) and k not in out:
                out[k] = v.detach()
        return out
    if isinstance(program, torch.nn.Module):
        return {k: v.detach() for k, v in program.state_dict().items()}
    if isinstance(program, Mapping):
        return {str(k): _as_tensor(v, str(k)) for k, v in program.items()}
    fmt = getattr(program, "program_format", None)
    if isinstance(fmt, str):  # e.g. an OnnxProgram: its float initializers are its weights
        state = {str(k): _as_tensor(v, str(k)) for k, v in program.state_dict().items()}
        if not state:
            from .graph import NotAvailableForFormat

            raise NotAvailableForFormat(
                "comparing weights (the program has no weight tensors)", fmt
            )
        return state
    raise TypeError(
        f"expected an ExportedProgram, nn.Module or a mapping of tensors, got "
        f"{type(program).__name__}"
    )


def _as_tensor(v: Any, name: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach()
    try:
        return torch.as_tensor(np.asarray(v))
    except Exception as exc:
        raise TypeError(f"state entry {name!r} is not a tensor ({type(v).__name__})") from exc


def _rel_change(new: torch.Tensor, old: torch.Tensor) -> float:
    """Relative Frobenius change; inf if either side is not finite (the change is unbounded)."""
    a = new.detach().to(torch.float64).reshape(-1)
    b = old.detach().to(torch.float64).reshape(-1)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return math.inf
    diff = float(torch.linalg.vector_norm(a - b))
    denom = max(float(torch.linalg.vector_norm(b)), 1e-8 * math.sqrt(max(b.numel(), 1)), 1e-12)
    return diff / denom


def _tensor_score(t: TensorChange) -> float:
    if t.nan_count or t.inf_count or math.isinf(t.rel_change):
        return math.inf
    if not math.isnan(t.ratio):
        return t.ratio
    # no history: rank by relative change on the ratio's scale (change / threshold)
    return t.rel_change / NO_HISTORY_REL_CHANGE * RATIO_THRESHOLD


def compare_weights(
    candidate_state: Mapping[str, torch.Tensor] | Any,
    stable_states: Sequence[Mapping[str, torch.Tensor] | Any],
) -> WeightComparison:
    """Compare a candidate snapshot's tensors with stable snapshots (oldest first).

    Each tensor's relative change against the most recent stable snapshot is set against the
    usual change between consecutive stable snapshots (median and MAD), so a layer that moved
    ten times more than it usually does stands out even when its absolute change is small.
    Programs and modules are accepted in place of state mappings (see :func:`program_state`).
    """
    cand = program_state(candidate_state)
    if isinstance(stable_states, Mapping) or not isinstance(stable_states, Sequence):
        raise TypeError("stable_states must be a sequence (oldest first) of states or programs")
    stables = [program_state(s) for s in stable_states]
    if not stables:
        raise ValueError(
            "compare_weights needs at least one stable snapshot to compare against; pass the "
            "predecessor's state (e.g. program_state(baseline_program))"
        )
    if not cand:
        raise ValueError("candidate_state has no tensors")
    last = stables[-1]
    added = tuple(sorted(k for k in cand if k not in last))
    removed = tuple(sorted(k for k in last if k not in cand))

    tensors = [
        tc
        for name, t in cand.items()
        if name in last and (tc := _tensor_change(name, t.detach(), last[name], stables))
    ]
    layers = _suspect_layers(tensors)
    return WeightComparison(
        tensors=tuple(tensors),
        suspect_layers=tuple(layers),
        n_stable=len(stables),
        added=added,
        removed=removed,
    )


def _tensor_change(
    name: str,
    t: torch.Tensor,
    previous: torch.Tensor,
    stables: list[dict[str, torch.Tensor]],
) -> TensorChange | None:
    """One tensor's change against its predecessor, judged against how much it usually moves
    between stable snapshots; None for integer buffers (no weight signal)."""
    if not (t.is_floating_point() or t.is_complex()):
        return None  # integer buffers (e.g. num_batches_tracked) carry no weight signal
    nan_count = int(torch.isnan(t).sum())
    inf_count = int(torch.isinf(t).sum())
    shape = tuple(int(d) for d in t.shape)
    layer = layer_of_parameter(name)
    if tuple(previous.shape) != shape:
        return TensorChange(
            name, layer, shape, t.numel(), nan_count, inf_count, math.inf, math.nan,
            math.inf, math.inf, True, f"shape changed from {tuple(previous.shape)} to {shape}",
        )  # fmt: skip
    rel = _rel_change(t, previous)
    history = [
        _rel_change(b[name], a[name])
        for a, b in itertools.pairwise(stables)
        if name in a and name in b and a[name].shape == b[name].shape
    ]
    history = [h for h in history if math.isfinite(h)]
    if history:
        h = np.asarray(history)
        usual = float(np.median(h))
        mad = float(np.median(np.abs(h - usual)))
        # floor the spread: with few, near-identical stable changes the MAD is ~0
        spread = max(_MAD_SCALE * mad, 0.1 * usual, 1e-12)
        z = (rel - usual) / spread if math.isfinite(rel) else math.inf
        ratio = rel / max(usual, 1e-12) if math.isfinite(rel) else math.inf
    else:
        usual, z, ratio = math.nan, math.nan, math.nan
    reasons = []
    if nan_count or inf_count:
        reasons.append(f"{nan_count} NaN and {inf_count} inf values")
    if history and math.isfinite(rel) and ratio >= RATIO_THRESHOLD and z >= Z_THRESHOLD:
        reasons.append(
            f"changed {rel:.3g} (relative), {ratio:.1f}x its usual {usual:.3g} "
            f"between stable snapshots (robust z {z:.1f})"
        )
    if not history and math.isfinite(rel) and rel >= NO_HISTORY_REL_CHANGE:
        reasons.append(f"changed {rel:.3g} (relative) with no stable history to compare")
    return TensorChange(
        name=name,
        layer=layer,
        shape=shape,
        numel=t.numel(),
        nan_count=nan_count,
        inf_count=inf_count,
        rel_change=rel,
        usual_change=usual,
        ratio=ratio,
        robust_z=z,
        suspect=bool(reasons),
        reason="; ".join(reasons),
    )


def _suspect_layers(tensors: list[TensorChange]) -> list[LayerSuspect]:
    """Layers with a suspect tensor, non-finite ones first (by how many bad values), then by
    the worst tensor's score."""
    by_layer: dict[str, list[TensorChange]] = {}
    for tc in tensors:
        by_layer.setdefault(tc.layer, []).append(tc)
    layers: list[LayerSuspect] = []
    for layer, items in by_layer.items():
        bad = [tc for tc in items if tc.suspect]
        if not bad:
            continue
        worst = max(bad, key=_tensor_score)
        layers.append(
            LayerSuspect(
                layer=layer,
                score=_tensor_score(worst),
                nan_count=sum(tc.nan_count for tc in items),
                inf_count=sum(tc.inf_count for tc in items),
                worst_tensor=worst.name,
                reason=f"{worst.name}: {worst.reason}",
            )
        )
    layers.sort(key=lambda s: (s.nan_count + s.inf_count, s.score), reverse=True)
    return layers
