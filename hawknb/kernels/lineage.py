"""Lineage root cause: the highest upstream node whose change explains the broken targets.

A general kernel over any DAG of named nodes with per-node metric series (data lineage of
features, or a service dependency graph): given targets (e.g. the features blamed by
attribution) and an onset, every node gets a change score (robust, seasonality-aware z of its
statistics after vs before the onset, times how close its change point is to the onset; see
:func:`hawknb.kernels.isolation.series_shift`), then changes are *explained away* along edges:

* a change propagates downstream through changed nodes and through nodes without statistics
  (unknown is not unchanged: an unmonitored table in the middle must not cut the chain); an
  observed, unchanged node blocks it, and so does a node that changed only in other
  statistics than the upstream node (a row-count drop upstream does not explain a shifted mean
  downstream whose row count held);
* a changed node that no other changed node reaches this way is a root candidate; the others
  are explained by the roots that reach them;
* roots are ranked by their change score times how much of the affected ancestry of the targets
  (and how many targets) they explain, so the highest node that accounts for the most affected
  descendants wins, and a change far from the targets whose children did not move ranks low.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import networkx as nx
import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace.contract import NODE, STAT, TS, VALUE
from ..workspace.errors import WorkspaceError
from .isolation import Shift, _to_us, series_shift, strength

CHANGED, UNCHANGED, UNKNOWN = "changed", "unchanged", "unknown"
#: node change score (strength x timing) from which a node counts as changed
_CHANGED_AT = 0.25
#: discount of a changed node that another changed node explains
_EXPLAINED_DISCOUNT = 0.3


@dataclass(frozen=True)
class StatChange(Shift):
    """One statistic of a node around the onset: its :class:`Shift` (the same measurements the
    model and rollout kernels report, so a z or a timing means one thing everywhere), named by
    ``stat`` and scored ``strength(z) * timing``, the score lineage ranks nodes by."""

    stat: str
    score: float

    @classmethod
    def of(cls, stat: str, shift: Shift) -> StatChange:
        """The change of ``stat`` that ``shift`` measured, with its lineage score."""
        measured = {f.name: getattr(shift, f.name) for f in fields(Shift)}
        return cls(**measured, stat=stat, score=strength(shift.z) * shift.timing)


@dataclass(frozen=True)
class RootCandidate:
    """A changed node. is_root: no other changed node explains it; explained: the changed
    nodes downstream that it explains (reached through changed or unknown nodes);
    targets_explained: the targets it reaches that way; explained_by: roots that explain it."""

    node: str
    kind: str | None
    score: float
    confidence: float
    is_root: bool
    changed_stats: tuple[StatChange, ...]
    explained: tuple[str, ...]
    targets_explained: tuple[str, ...]
    explained_by: tuple[str, ...]


@dataclass(frozen=True)
class BlastRadius:
    """Everything downstream of a root (the root itself excluded), split by node kind.

    features: nodes of kind 'feature' or listed as features (without any kinds in the graph,
    the sinks); models: nodes of kind 'model'; other: the rest."""

    root: str
    nodes: tuple[str, ...]
    features: tuple[str, ...]
    models: tuple[str, ...]
    other: tuple[str, ...]


@dataclass(frozen=True)
class RootCauseResult:
    """Ranked root-cause candidates (best first), the top root, its blast radius and the status
    (changed / unchanged / unknown) of every node that was looked at."""

    candidates: tuple[RootCandidate, ...]
    blast_radius: BlastRadius | None
    status: dict[str, str]
    targets: tuple[str, ...]
    onset: datetime

    @property
    def top(self) -> RootCandidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def confidence(self) -> float:
        return self.candidates[0].confidence if self.candidates else 0.0

    def to_frame(self) -> pl.DataFrame:
        """One row per candidate, for tables and widgets."""
        return pl.DataFrame(
            [
                {
                    "rank": i + 1,
                    NODE: c.node,
                    "kind": c.kind,
                    "score": c.score,
                    "confidence": c.confidence,
                    "is_root": c.is_root,
                    "stats": [s.stat for s in c.changed_stats],
                    "max_z": max((abs(s.z) for s in c.changed_stats), default=0.0),
                    "explained": list(c.explained),
                    "targets_explained": list(c.targets_explained),
                    "explained_by": list(c.explained_by),
                }
                for i, c in enumerate(self.candidates)
            ],
            schema={
                "rank": pl.Int64,
                NODE: pl.String,
                "kind": pl.String,
                "score": pl.Float64,
                "confidence": pl.Float64,
                "is_root": pl.Boolean,
                "stats": pl.List(pl.String),
                "max_z": pl.Float64,
                "explained": pl.List(pl.String),
                "targets_explained": pl.List(pl.String),
                "explained_by": pl.List(pl.String),
            },
        )


def _load_stats(stats: object, start: datetime, stop: datetime) -> pl.DataFrame:
    lf = as_lazy(stats)
    schema = lf.collect_schema()
    need = [TS, NODE, STAT, VALUE]
    missing = [col for col in need if col not in schema]
    if missing:
        raise WorkspaceError(
            "the lineage_stats table",
            f"is missing columns {missing}",
            expected=f"columns {need}",
            found=f"columns {list(schema.names())}",
            fix="pass ws.table('lineage_stats') or a frame with ts, node, stat, value",
        )
    if not isinstance(schema[TS], pl.Datetime) or schema[TS].time_zone is None:
        raise WorkspaceError(
            "the lineage_stats table, column 'ts'",
            "is not a UTC timestamp",
            found=str(schema[TS]),
            fix="store ts as a timezone-aware UTC datetime",
        )
    return collect(
        lf.select(
            pl.col(TS).dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
            pl.col(NODE).cast(pl.String),
            pl.col(STAT).cast(pl.String),
            pl.col(VALUE).cast(pl.Float64),
        ).filter((pl.col(TS) >= start) & (pl.col(TS) < stop))
    )


def node_series(
    stats: object,
    nodes: Iterable[str],
    *,
    around: datetime,
    before: timedelta = timedelta(days=2),
    after: timedelta = timedelta(hours=12),
    stat: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """The (ts, node, stat, value) rows of some nodes in [around - before, around + after),
    sorted, for sparklines next to the ranked candidates."""
    _to_us(around)
    df = _load_stats(stats, around - before, around + after)
    want = list(nodes)
    df = df.filter(pl.col(NODE).is_in(want))
    if stat is not None:
        df = df.filter(pl.col(STAT).is_in([stat] if isinstance(stat, str) else list(stat)))
    return df.sort(NODE, STAT, TS)


def _kind(graph: nx.DiGraph, node: str) -> str | None:
    k = graph.nodes[node].get("kind")
    return str(k) if k else None


def _walk_down(
    graph: nx.DiGraph,
    start: str,
    status: dict[str, str],
    moved: dict[str, set[str]] | None = None,
    observed: dict[str, set[str]] | None = None,
) -> list[str]:
    """Nodes reachable from start through changed or unknown nodes (start excluded).

    With ``moved`` (node -> statistics that changed) and ``observed`` (node -> statistics it
    has), a changed node is reached only if it changed in a statistic the start also changed
    in (or the two share no statistic at all, so nothing can be compared): a source whose row
    count dropped does not explain a feature whose mean moved but whose row count did not.
    """
    seen = {start}
    out = []
    queue = deque([start])
    mine = (moved or {}).get(start, set())
    mine_obs = (observed or {}).get(start, set())
    while queue:
        u = queue.popleft()
        for v in graph.successors(u):
            if v in seen or status.get(v, UNKNOWN) == UNCHANGED:
                continue
            if moved is not None and status.get(v) == CHANGED:
                comparable = mine_obs & (observed or {}).get(v, set())
                if comparable and not (mine & moved.get(v, set())):
                    continue
            seen.add(v)
            out.append(v)
            queue.append(v)
    return out


def blast_radius(
    graph: nx.DiGraph, root: str, *, features: Iterable[str] | None = None
) -> BlastRadius:
    """Every node downstream of ``root``, split into features / models / other."""
    if root not in graph:
        raise ValueError(f"{root!r} is not a node of the graph")
    down = sorted(nx.descendants(graph, root))
    feats = set(features or ())
    any_kind = any(graph.nodes[n].get("kind") for n in graph.nodes)
    f, m, o = [], [], []
    for n in down:
        kind = (_kind(graph, n) or "").lower()
        if n in feats or kind == "feature" or (not any_kind and graph.out_degree(n) == 0):
            f.append(n)
        elif kind == "model":
            m.append(n)
        else:
            o.append(n)
    return BlastRadius(root, tuple(down), tuple(f), tuple(m), tuple(o))


def root_cause(
    graph: nx.DiGraph,
    stats: object,
    targets: Sequence[str],
    onset: datetime,
    *,
    window: timedelta = timedelta(hours=6),
    reference: timedelta = timedelta(days=7),
    features: Iterable[str] | None = None,
) -> RootCauseResult:
    """Rank the upstream root causes of the targets' change at ``onset``.

    ``graph``: a networkx DiGraph, edges pointing downstream (source -> derived), node attribute
    ``kind`` optional. ``stats``: (ts, node, stat, value) rows, pandas or polars. ``targets``:
    node ids whose change is to be explained (e.g. the responsible features). The post window is
    [onset, onset + window), the reference [onset - reference, onset). ``features`` marks
    feature nodes for the blast radius when the graph has no kinds.

    Nodes without statistics are unknown: the walk continues through them. Only the targets and
    their ancestors are ranked. See the module docstring for the scoring.
    """
    if not isinstance(graph, nx.DiGraph):
        raise TypeError(f"graph must be a networkx.DiGraph, got {type(graph).__name__}")
    if isinstance(targets, str):
        targets = [targets]
    targets = list(dict.fromkeys(targets))
    if not targets:
        raise ValueError("targets is empty; pass the node ids whose change is to be explained")
    missing = [t for t in targets if t not in graph]
    if missing:
        raise WorkspaceError(
            "root_cause targets",
            f"{missing} are not nodes of the lineage graph",
            expected="node ids of lineage.json (a feature's node id is its column name)",
            found=f"{graph.number_of_nodes()} nodes, e.g. {sorted(map(str, graph.nodes))[:5]}",
            fix="pass targets that are lineage node ids",
        )
    if window <= timedelta(0) or reference <= timedelta(0):
        raise ValueError("window and reference must be positive durations")
    onset_us = _to_us(onset)
    df = _load_stats(stats, onset - reference, onset + window)
    end_us = onset_us + int(window / timedelta(microseconds=1)) - 1
    ref_start_us = onset_us - int(reference / timedelta(microseconds=1))
    uniq = np.unique(df[TS].cast(pl.Int64).to_numpy()) if df.height else np.array([0])
    step = int(np.median(np.diff(uniq))) if uniq.size > 1 else 3_600_000_000
    tolerance = max(2 * step, int(window / timedelta(microseconds=1)) // 2)

    ancestry = set(targets)
    for t in targets:
        ancestry |= nx.ancestors(graph, t)

    # -- change score per node ---------------------------------------------------------------
    changes: dict[str, list[StatChange]] = {}
    df = df.filter(pl.col(NODE).is_in(list(map(str, graph.nodes)))).sort(NODE, STAT, TS)
    # sorted, so each (node, stat) series is one contiguous slice of two numpy arrays: no
    # per-series gather of the frame
    ts_all = df[TS].cast(pl.Int64).to_numpy()
    val_all = df[VALUE].to_numpy()
    runs = df.select(NODE, STAT).with_row_index("__i").group_by([NODE, STAT], maintain_order=True)
    bounds = runs.agg(pl.col("__i").first().alias("__lo"), pl.len().alias("__n"))
    for node, stat, lo, n in bounds.iter_rows():
        sh = series_shift(
            ts_all[lo : lo + n],
            val_all[lo : lo + n],
            onset_us=onset_us,
            end_us=end_us,
            ref_start_us=ref_start_us,
            tolerance_us=tolerance,
        )
        if sh is None:
            continue
        changes.setdefault(node, []).append(StatChange.of(stat, sh))
    node_score = {n: max(s.score for s in cs) for n, cs in changes.items()}
    status = {
        n: (
            UNKNOWN
            if n not in node_score
            else CHANGED
            if node_score[n] >= _CHANGED_AT
            else UNCHANGED
        )
        for n in map(str, graph.nodes)
    }

    # -- explaining away ---------------------------------------------------------------------
    changed = [n for n in graph.nodes if status[n] == CHANGED]
    moved = {n: {sc.stat for sc in cs if sc.score >= _CHANGED_AT} for n, cs in changes.items()}
    observed = {n: {sc.stat for sc in cs} for n, cs in changes.items()}
    reach = {n: _walk_down(graph, n, status, moved, observed) for n in changed}
    explained_by: dict[str, list[str]] = {n: [] for n in changed}
    for u in changed:
        for v in reach[u]:
            if status[v] == CHANGED:
                explained_by[v].append(u)
    affected = {n for n in changed if n in ancestry}
    target_set = set(targets)
    cands = []
    for n in changed:
        if n not in ancestry:
            continue
        expl = [v for v in reach[n] if status[v] == CHANGED]
        hit_targets = sorted(({n} | set(reach[n])) & target_set)
        cov_aff = len(({n} | set(expl)) & affected) / max(len(affected), 1)
        cov_t = len(hit_targets) / len(targets)
        is_root = not explained_by[n]
        score = node_score[n] * (0.4 + 0.3 * cov_aff + 0.3 * cov_t)
        conf = node_score[n] * cov_t
        if not is_root:
            score *= _EXPLAINED_DISCOUNT
            conf *= _EXPLAINED_DISCOUNT
        roots_above = sorted(u for u in explained_by[n] if not explained_by[u])
        cands.append(
            RootCandidate(
                node=n,
                kind=_kind(graph, n),
                score=float(score),
                confidence=float(conf),
                is_root=is_root,
                changed_stats=tuple(
                    sorted(
                        (s for s in changes[n] if s.score >= _CHANGED_AT),
                        key=lambda s: -s.score,
                    )
                ),
                explained=tuple(sorted(expl)),
                targets_explained=tuple(hit_targets),
                explained_by=tuple(roots_above or sorted(explained_by[n])),
            )
        )
    # highest first among ties: more explained descendants, then fewer ancestors
    depth = {c.node: len(nx.ancestors(graph, c.node)) for c in cands}
    cands.sort(key=lambda c: (-c.score, -len(c.explained), depth[c.node], c.node))
    radius = blast_radius(graph, cands[0].node, features=features) if cands else None
    return RootCauseResult(
        candidates=tuple(cands),
        blast_radius=radius,
        status={n: status[n] for n in map(str, graph.nodes) if n in ancestry or n in node_score},
        targets=tuple(targets),
        onset=onset,
    )


__all__ = [
    "BlastRadius",
    "RootCandidate",
    "RootCauseResult",
    "StatChange",
    "blast_radius",
    "node_series",
    "root_cause",
]
