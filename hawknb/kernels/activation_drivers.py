"""Partial activation blow-ups and the input features that trigger them.

A snapshot that breaks on a few percent of rows (say, when one input feature exceeds a
threshold) does not have to produce NaN or astronomically large values: its bad rows only
need to sit far outside what the same node computes on the other rows, or on the same rows
under the previous snapshot. This module finds such rows without an absolute cut-off:

1. :func:`row_magnitudes` replays a program node by node and keeps, per node, each row's
   max |activation| (only that: a rows x nodes table, never the activations).
2. :func:`find_outlier_rows` takes the first node (topological order) where a minority of rows
   is far above the node's typical magnitude, measured against the previous snapshot on the
   same rows when it is given (a benign retrain moves every row a little; a blow-up moves a
   few rows a lot), else against the node's own healthy rows.
3. :func:`rank_drivers` compares the bad rows' inputs with the healthy rows' inputs, feature
   by feature: the rank separation (AUC) of the two groups and the best one-sided threshold,
   so a trigger like ``x > t`` shows as a feature whose bad rows all lie beyond ``t``.

Pure functions over a program and a float32 batch; nothing here reads a workspace.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx

from .graph import node_layer, program_graph

__all__ = [
    "DriverFeature",
    "OutlierRows",
    "find_outlier_rows",
    "rank_drivers",
    "row_magnitudes",
]

#: a row is an outlier at a node when its magnitude is this many times the node's typical
#: (median) row magnitude, after dividing by the reference ratio. Scale-free: a ratio, not a
#: magnitude, so it holds whatever units a model's activations have
OUTLIER_RATIO = 8.0
#: ... and at least this many robust sigmas (log scale) above the typical row
OUTLIER_Z = 6.0
#: at most this share of rows may be outliers (more is a shift of the whole node, not rows)
MAX_SHARE = 0.5
#: ... and at least this share: on thousands of rows a handful always sit far from their
#: reference where an activation is near zero under one snapshot and not under the other
MIN_SHARE = 0.005
#: fewest rows for a whole-node blow-up: each row is measured against itself under the
#: previous snapshot, so no spread has to be estimated
MIN_ROWS = 8
#: fewest rows for a minority: "typical" and its robust spread need more of them (with 12 rows
#: a minority of two is a sixth of them and its MAD a guess)
MIN_MINORITY_ROWS = 32


@dataclass(frozen=True)
class RowMagnitudes:
    """Per node (topological order): its layer and each row's max |activation| (inf: NaN/inf)."""

    nodes: tuple[str, ...]
    layers: tuple[str | None, ...]
    values: np.ndarray  # [n_nodes, n_rows] float64


class _RowRecorder(torch.fx.Interpreter):
    def __init__(self, gm: torch.fx.GraphModule, n_rows: int) -> None:
        super().__init__(gm, garbage_collect_values=True)
        self.n_rows = n_rows
        self.rows: dict[str, np.ndarray] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        out = super().run_node(n)
        if (
            n.op == "call_function"
            and isinstance(out, torch.Tensor)
            and out.dim() >= 1
            and out.shape[0] == self.n_rows
            and out.is_floating_point()
        ):
            flat = out.detach().reshape(self.n_rows, -1).to(torch.float32).abs()
            self.rows[n.name] = flat.nan_to_num(nan=math.inf).amax(dim=1).double().numpy()
        return out


def row_magnitudes(program: Any, x: np.ndarray) -> RowMagnitudes:
    """Replay ``program`` on ``x`` ([rows, features] float32) and keep each row's max |value|
    at every row-shaped operator node."""
    pg = program_graph(program)
    if len(pg.user_inputs) != 1:
        raise ValueError(f"expected a program with one input, it has {len(pg.user_inputs)}")
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"x must be a non-empty [rows, features] array, got shape {arr.shape}")
    rec = _RowRecorder(pg.module, arr.shape[0])
    args = [
        torch.from_numpy(arr) if name == pg.user_inputs[0] else pg.bound[name]
        for name in pg.placeholders
    ]
    with torch.no_grad():
        rec.run(*args)
    names, layers = [], []
    for n in pg.module.graph.nodes:
        if n.name in rec.rows:
            names.append(n.name)
            layers.append(node_layer(n, pg.param_of))
    values = np.stack([rec.rows[n] for n in names]) if names else np.zeros((0, arr.shape[0]))
    return RowMagnitudes(tuple(names), tuple(layers), values)


@dataclass(frozen=True)
class OutlierRows:
    """The first node where a minority of rows blows up, and those rows."""

    node: str
    layer: str | None
    bad: np.ndarray  # bool [rows]
    bad_fraction: float
    #: median magnitude of the bad rows over the typical row's (after the reference ratio)
    ratio: float
    #: "previous snapshot" or "healthy rows"
    reference: str
    #: an earlier node where (most) rows blew up as a whole against the previous snapshot, and
    #: its layer: the first bad layer, while the minority at ``node`` names the trigger rows
    #: (a bias that blew up is large on every row; only the triggered rows pass its activation)
    whole_node: str | None = None
    whole_layer: str | None = None


def _floor(values: np.ndarray, share: float = 1e-3) -> float:
    """Magnitudes under ``share`` of the typical row's count as that: a row that is (near)
    zero where others are not is not a blow-up of the others."""
    finite = values[np.isfinite(values)]
    typical = float(np.median(finite)) if finite.size else 0.0
    return max(typical * share, 1e-30)


#: a row's reference magnitude under this share of the reference's typical row is floored
#: there before the ratio: a logit that happens to sit near zero under the previous snapshot
#: would otherwise make an ordinary row look like a blow-up
REFERENCE_FLOOR = 0.05


def _log_excess(values: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """log of each row's magnitude over the node's median row (over the reference's, row by
    row, when a reference run of the same rows is given)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.log(np.maximum(values, _floor(values)))
        if reference is not None:
            v = v - np.log(np.maximum(reference, _floor(reference, REFERENCE_FLOOR)))
        finite = np.isfinite(v)
        med = np.median(v[finite]) if finite.any() else 0.0
        return np.where(np.isnan(values), np.inf, v - med)


def find_outlier_rows(
    current: RowMagnitudes,
    reference: RowMagnitudes | None = None,
    *,
    ratio: float = OUTLIER_RATIO,
    min_z: float = OUTLIER_Z,
    max_share: float = MAX_SHARE,
    min_minority_rows: int = MIN_MINORITY_ROWS,
) -> OutlierRows | None:
    """The first node whose rows split into a typical majority and a minority ``ratio`` times
    (and ``min_z`` robust sigmas) larger. With ``reference`` (the previous snapshot on the same
    rows, same graph), each row is measured against itself under the reference, so rows that
    are naturally large do not count; without such a minority anywhere, the first node where
    most rows are ``ratio`` times their reference magnitude is a whole-node blow-up
    (bad_fraction above ``max_share``). None when no node has either. A minority is looked
    for on ``min_minority_rows`` finite rows or more, a whole-node blow-up on MIN_ROWS: a
    canary of a sampled log may have served a dozen rows, enough to show every one of them
    hundreds of times its previous snapshot, too few to say what a typical row is."""
    if not ratio > 1 or not 0 < max_share < 1:
        raise ValueError(f"need ratio > 1 and 0 < max_share < 1, got {ratio}, {max_share}")
    ref_rows = {}
    if reference is not None and reference.values.shape[1:] == current.values.shape[1:]:
        ref_rows = dict(zip(reference.nodes, reference.values, strict=True))
    log_ratio = math.log(ratio)
    whole: OutlierRows | None = None
    for i, node in enumerate(current.nodes):
        ref = ref_rows.get(node)
        vals = current.values[i]
        if not np.median(vals[np.isfinite(vals)] if np.isfinite(vals).any() else [0.0]) > 0:
            continue  # most rows exactly zero (a mask, a dead unit): no typical magnitude
        # a minority of rows anywhere first (it names trigger features: a layer whose bias
        # blew up is large on every row, yet only the triggered rows pass its activation),
        # else the first node that blew up as a whole
        if ref is not None and whole is None:
            whole = _whole_node(node, current.layers[i], vals, ref, log_ratio)
        excess = _log_excess(current.values[i], ref)
        finite = excess[np.isfinite(excess)]
        if finite.size < max(MIN_ROWS, min_minority_rows):
            continue
        mad = float(np.median(np.abs(finite))) * 1.4826
        cut = max(log_ratio, min_z * mad)
        bad = excess >= cut
        share = float(bad.mean())
        if not MIN_SHARE <= share <= max_share or bad.sum() < 2:
            continue
        typical = float(np.median(excess[bad]))
        return OutlierRows(
            node=node,
            layer=current.layers[i],
            bad=bad,
            bad_fraction=share,
            ratio=float(math.exp(min(typical, 700.0))),
            reference="previous snapshot" if ref is not None else "healthy rows",
            whole_node=whole.node if whole is not None else None,
            whole_layer=whole.layer if whole is not None else None,
        )
    return whole


def _whole_node(
    node: str, layer: str | None, vals: np.ndarray, ref: np.ndarray, log_ratio: float
) -> OutlierRows | None:
    """Most rows ``ratio`` times their magnitude under the previous snapshot: the whole node
    blew up. Measured row by row without centring (centring on the median row, as the
    minority test does, would hide a blow-up that hits every row alike)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.log(np.maximum(vals, _floor(vals))) - np.log(np.maximum(ref, _floor(ref)))
    raw = np.where(np.isnan(vals), np.inf, raw)
    finite = raw[~np.isnan(raw)]
    if finite.size < MIN_ROWS or not float(np.median(finite)) >= log_ratio:
        return None
    bad = raw >= log_ratio
    return OutlierRows(
        node=node,
        layer=layer,
        bad=bad,
        bad_fraction=float(bad.mean()),
        ratio=float(math.exp(min(float(np.median(finite)), 700.0))),
        reference="previous snapshot",
    )


@dataclass(frozen=True)
class DriverFeature:
    """An input feature that separates the bad rows from the healthy ones."""

    feature: str
    #: 0..1: 2*|AUC-0.5| of bad vs healthy rows' values (1 = no overlap in rank)
    score: float
    #: the one-sided cut that best splits the rows: bad rows are ``> threshold`` (direction +1)
    #: or ``< threshold`` (-1)
    threshold: float
    direction: int
    #: share of bad rows beyond the cut, and of healthy rows beyond it
    bad_beyond: float
    good_beyond: float


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Per column, 1-based ranks of finite values, tied values sharing their mean rank (as
    scipy.stats.rankdata(method="average", axis=0), without importing scipy.stats)."""
    n = a.shape[0]
    order = np.argsort(a, axis=0, kind="stable")
    ordered = np.take_along_axis(a, order, axis=0)
    pos = np.broadcast_to(np.arange(n)[:, None], a.shape)
    starts = np.ones(a.shape, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    ends = np.ones(a.shape, dtype=bool)
    ends[:-1] = starts[1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=0)
    last = np.minimum.accumulate(np.where(ends, pos, n - 1)[::-1], axis=0)[::-1]
    ranks = np.empty(a.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=0)
    return ranks


def _auc(bad: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Per column, P(bad value > good value) (ties half), via ranks: [features]."""
    both = np.concatenate([bad, good], axis=0)
    # tied values share their average rank: counts, flags and clipped features tie often, and
    # ranks by position would make the AUC depend on the order the log lists its rows in
    ranks = _average_ranks(both)
    r_bad = ranks[: bad.shape[0]].sum(axis=0)
    nb, ng = bad.shape[0], good.shape[0]
    return (r_bad - nb * (nb + 1) / 2) / (nb * ng)


def rank_drivers(
    x: np.ndarray, bad: np.ndarray, feature_names: Sequence[str], *, top: int = 10
) -> tuple[DriverFeature, ...]:
    """Rank the input features by how well they separate ``bad`` rows from the rest.

    NaN inputs are set to the column median first (a NaN-driven fault is the plain tracer's
    business). Returns at most ``top`` features, best first; empty when either group is empty.
    """
    x = np.asarray(x, dtype=np.float64)
    bad = np.asarray(bad, dtype=bool)
    if x.ndim != 2 or x.shape[0] != bad.shape[0] or x.shape[1] != len(feature_names):
        raise ValueError(
            f"x {x.shape}, bad {bad.shape} and {len(feature_names)} names do not line up"
        )
    if bad.all() or not bad.any():
        return ()
    med = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0)
    x = np.where(np.isfinite(x), x, np.where(np.isfinite(med), med, 0.0))
    xb, xg = x[bad], x[~bad]
    auc = _auc(xb, xg)
    score = 2 * np.abs(auc - 0.5)
    order = np.argsort(-score, kind="stable")[:top]
    out = []
    for j in order:
        d = 1 if auc[j] >= 0.5 else -1
        b, g = xb[:, j] * d, xg[:, j] * d
        # the cut just under the bad rows' 5th percentile: most bad rows beyond it
        cut = float(np.quantile(b, 0.05))
        out.append(
            DriverFeature(
                feature=str(feature_names[j]),
                score=float(score[j]),
                threshold=cut * d,
                direction=d,
                bad_beyond=float(np.mean(b >= cut)),
                good_beyond=float(np.mean(g >= cut)),
            )
        )
    return tuple(out)
