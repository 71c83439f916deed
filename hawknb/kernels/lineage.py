"""Root cause on a graph: the node whose own change explains the broken targets.

A general kernel over any graph of nodes (any hashable ids) with per-node metric series: data
lineage of features (``mode="lineage"``, edges ``source -> derived``) or a service call graph
(``mode="call_graph"``, edges ``caller -> callee``; ``"bidirectional"`` when no direction is
preferred). Given targets (e.g. the features blamed by attribution, or the front-end service
whose latency alerted) and an onset, every node gets a change score (robust z of its
statistics after vs before the onset, against a time-of-day profile only where the reference
has the cycles for one, times how close its change point is to the onset; windows counted in
the series' own sampling steps, see :mod:`hawknb.kernels.lineage_series`), then changes are
*explained away* along edges (:mod:`hawknb.kernels.lineage_graph`):

* a change travels through changed nodes, through nodes without statistics (unknown is not
  unchanged: an unmonitored table in the middle must not cut the chain) and through the
  targets (a target that did not move visibly is still where the walk ends); an observed,
  unchanged node blocks it, and so does a node that changed only in other statistics (a
  row-count drop upstream does not explain a shifted mean downstream whose row count held);
* in the two-way modes, of two neighbours that changed together the one with the earlier,
  broader or clearly larger change explains the other (a failing service's callees move with
  it -- fewer calls, retries -- but do not explain it); in a call graph a callee never
  explains a caller whose rise (latency, failure rate) is clearly more than its callees can
  carry, measured in the statistic's own units, not in z;
* neighbours whose series move identically (a load balancer and its service) are aliases:
  one candidate stands for the group and lists the others;
* a changed node nothing else explains is a root; roots that reach a target rank above all
  that do not, then by change score times how much of the affected region (and how many
  targets) they explain.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import networkx as nx
import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace.contract import NODE, STAT, TS, VALUE
from ..workspace.errors import WorkspaceError, WorkspaceWarning
from .isolation import Shift, _to_us, strength
from .lineage_graph import (
    CHANGED,
    MODES,
    UNCHANGED,
    UNKNOWN,
    NodeChanges,
    alias_groups,
    causes_of,
    effect_graph,
    own_excess,
    representative,
    roots_of,
    walk,
)
from .lineage_series import default_windows, node_shift, own_shift, sampling_step

_ALIAS = "alias"
#: node change score (strength x timing) from which a node counts as changed
_CHANGED_AT = 0.25
#: discount of a changed node that another changed node explains
_EXPLAINED_DISCOUNT = 0.3
#: ``symptom="auto"``: the targets' statistics whose |z| is at least this share of their
#: largest are the symptom
_SYMPTOM_SHARE = 0.5


def _symptom_stats(
    changes: dict[str, list[StatChange]], targets: list[str], symptom: object, mode: str
) -> tuple[str, ...]:
    """The statistics the ranking reads (empty: all). ``"auto"`` in the two-way modes: the
    targets' statistics whose change is comparable to their largest (|z| at least
    _SYMPTOM_SHARE of it) -- the alert itself. In a service graph every kind of statistic
    moves with load and retries (a failing service's callers slow down, its callees see fewer
    requests), so a node that changed a lot in latency is no evidence about an outage seen
    in availability: on PetShop's tuning issues, reading only the symptom took top-1 from
    0.32 to 0.56. In lineage mode the walk already matches statistics along edges, and a
    source's row count legitimately explains a feature's null rate, so "auto" reads all."""
    if symptom is None or (symptom == "auto" and mode == "lineage"):
        return ()
    if symptom != "auto":
        return (symptom,) if isinstance(symptom, str) else tuple(symptom)
    zs = [
        (abs(sc.z), sc.stat)
        for t in targets
        for sc in changes.get(t, ())
        if np.isfinite(sc.z) and sc.z != 0
    ]
    if not zs:
        return ()
    top = max(z for z, _ in zs)
    return tuple(sorted({stat for z, stat in zs if z >= _SYMPTOM_SHARE * top}))


def _only_stats(
    changes: dict[str, list[StatChange]], refs: dict, keep: tuple[str, ...]
) -> tuple[dict[str, list[StatChange]], dict]:
    """``changes`` and ``refs`` with only the statistics in ``keep`` (all when it is empty);
    a node left without any is unobserved (unknown: passable, as for a node without stats)."""
    if not keep:
        return changes, refs
    wanted = set(keep)
    out = {n: [sc for sc in cs if sc.stat in wanted] for n, cs in changes.items()}
    return {n: cs for n, cs in out.items() if cs}, {k: v for k, v in refs.items() if k[1] in wanted}


@dataclass(frozen=True)
class StatChange(Shift):
    """One statistic of a node around the onset: its :class:`Shift` (the same measurements the
    model and rollout kernels report, so a z or a timing means one thing everywhere), named by
    ``stat`` and scored ``strength(z) * timing``, the score lineage ranks nodes by.

    own_z / own_timing: the same for the part of the series that the node's causes' series
    do not explain (None without causes); the score is the larger of the two, so a change
    hidden in the raw series by its parents' variance still counts."""

    stat: str
    score: float
    own_z: float | None = None
    own_timing: float = 0.0

    @classmethod
    def of(cls, stat: str, shift: Shift, own: tuple[float, float] | None = None) -> StatChange:
        """The change of ``stat`` that ``shift`` measured (and ``own``: (z, timing) of its
        unexplained part), with its lineage score."""
        measured = {f.name: getattr(shift, f.name) for f in fields(Shift)}
        score = strength(shift.z) * shift.timing
        if own is not None:
            score = max(score, strength(own[0]) * own[1])
        return cls(
            **measured,
            stat=stat,
            score=score,
            own_z=None if own is None else own[0],
            own_timing=0.0 if own is None else own[1],
        )


@dataclass(frozen=True)
class RootCandidate:
    """A changed node. is_root: no other changed node explains it; explained: the changed
    nodes it explains (reached through changed, unknown or target nodes); targets_explained:
    the targets it reaches that way; explained_by: roots that explain it; aliases: nodes whose
    series moved identically with this one (the same thing seen twice), reported with it."""

    node: Hashable
    kind: str | None
    score: float
    confidence: float
    is_root: bool
    changed_stats: tuple[StatChange, ...]
    explained: tuple[Hashable, ...]
    targets_explained: tuple[Hashable, ...]
    explained_by: tuple[Hashable, ...]
    aliases: tuple[Hashable, ...] = ()

    @property
    def nodes(self) -> tuple[Hashable, ...]:
        """The node and its aliases: a fix may be needed at any of them."""
        return (self.node, *self.aliases)


@dataclass(frozen=True)
class BlastRadius:
    """Everything downstream of a root (the root itself excluded), split by node kind.

    features: nodes of kind 'feature' or listed as features (without any kinds in the graph,
    the sinks); models: nodes of kind 'model'; other: the rest."""

    root: Hashable
    nodes: tuple[Hashable, ...]
    features: tuple[Hashable, ...]
    models: tuple[Hashable, ...]
    other: tuple[Hashable, ...]


@dataclass(frozen=True)
class RootCauseResult:
    """Ranked root-cause candidates (best first), the top root, its blast radius, the status
    (changed / unchanged / unknown) of every node that was looked at, and the windows and
    graph mode used (window/reference derived from ``step`` unless given)."""

    candidates: tuple[RootCandidate, ...]
    blast_radius: BlastRadius | None
    status: dict[Hashable, str]
    targets: tuple[Hashable, ...]
    onset: datetime
    mode: str = "lineage"
    step: timedelta | None = None
    window: timedelta | None = None
    reference: timedelta | None = None
    #: the statistics the ranking read (every statistic when empty), see ``symptom``
    symptom: tuple[str, ...] = ()

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
                    NODE: str(c.node),
                    "kind": c.kind,
                    "score": c.score,
                    "confidence": c.confidence,
                    "is_root": c.is_root,
                    "stats": [s.stat for s in c.changed_stats],
                    "max_z": max((abs(s.z) for s in c.changed_stats), default=0.0),
                    "explained": [str(n) for n in c.explained],
                    "targets_explained": [str(n) for n in c.targets_explained],
                    "explained_by": [str(n) for n in c.explained_by],
                    "aliases": [str(n) for n in c.aliases],
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
                "aliases": pl.List(pl.String),
            },
        )


_DIRECTIONS = (
    "mode='lineage' reads edges as source -> derived (a change flows along them); a service "
    "call graph (edges caller -> callee) needs mode='call_graph' (or graph.reverse() in lineage "
    "mode), and mode='bidirectional' lets changes travel both ways"
)


def _stats_lazy(stats: object, where: str = "root_cause(stats=...)") -> pl.LazyFrame:
    """The (ts, node, stat, value) rows, validated, as UTC microseconds / strings / floats."""
    lf = as_lazy(stats)
    schema = lf.collect_schema()
    need = [TS, NODE, STAT, VALUE]
    missing = [col for col in need if col not in schema]
    if missing:
        raise WorkspaceError(
            where,
            f"is missing columns {missing}",
            expected=f"columns {need}",
            found=f"columns {list(schema.names())}",
            fix="pass a frame with ts, node, stat, value (e.g. ws.table('lineage_stats'))",
        )
    if not isinstance(schema[TS], pl.Datetime) or schema[TS].time_zone is None:
        raise WorkspaceError(
            f"{where}, column 'ts'",
            "is not a UTC timestamp",
            found=str(schema[TS]),
            fix="store ts as a timezone-aware UTC datetime",
        )
    return lf.select(
        pl.col(TS).dt.convert_time_zone("UTC").dt.cast_time_unit("us").cast(pl.Int64),
        pl.col(NODE).cast(pl.String),
        pl.col(STAT).cast(pl.String),
        pl.col(VALUE).cast(pl.Float64),
    )


def node_series(
    stats: object,
    nodes: Iterable[Hashable],
    *,
    around: datetime,
    before: timedelta = timedelta(days=2),
    after: timedelta = timedelta(hours=12),
    stat: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """The (ts, node, stat, value) rows of some nodes in [around - before, around + after),
    sorted, for sparklines next to the ranked candidates (node ids as text)."""
    at = _to_us(around)
    lo, hi = at - _us(before), at + _us(after)
    lf = _stats_lazy(stats, "node_series(stats=...)")
    lf = lf.filter(
        (pl.col(TS) >= lo) & (pl.col(TS) < hi) & pl.col(NODE).is_in(list(map(str, nodes)))
    )
    if stat is not None:
        lf = lf.filter(pl.col(STAT).is_in([stat] if isinstance(stat, str) else list(stat)))
    df = collect(lf.with_columns(pl.col(TS).cast(pl.Datetime("us", "UTC"))))
    return df.sort(NODE, STAT, TS)


def _us(d: timedelta) -> int:
    return int(d / timedelta(microseconds=1))


def _kind(graph: nx.DiGraph, node: Hashable) -> str | None:
    k = graph.nodes[node].get("kind")
    return str(k) if k else None


def _string_graph(graph: nx.DiGraph, mode: str) -> tuple[nx.DiGraph, dict[str, Hashable]]:
    """The graph relabelled by each node's text (how stats name nodes) and the way back."""
    if not isinstance(graph, nx.DiGraph):
        raise TypeError(
            f"root_cause(graph=...) must be a networkx.DiGraph, got {type(graph).__name__}"
        )
    if mode not in MODES:
        raise ValueError(f"root_cause(mode={mode!r}) is not one of {MODES}: {_DIRECTIONS}")
    back: dict[str, Hashable] = {}
    for n in graph.nodes:
        key = str(n)
        if key in back and back[key] != n:
            raise ValueError(
                f"root_cause(graph=...): nodes {back[key]!r} and {n!r} have the same text "
                f"{key!r}, and stats name nodes by text; rename one"
            )
        back[key] = n
    return nx.relabel_nodes(graph, {n: str(n) for n in graph.nodes}, copy=True), back


def _check_targets(g: nx.DiGraph, targets: Sequence[Hashable] | Hashable) -> list[str]:
    if isinstance(targets, str) or not isinstance(targets, Iterable):
        targets = [targets]
    wanted = list(dict.fromkeys(targets))
    if not wanted:
        raise ValueError(
            "root_cause(targets=...) is empty; pass the node ids whose change is to be explained"
        )
    missing = [t for t in wanted if str(t) not in g]
    if missing:
        raise WorkspaceError(
            "root_cause(targets=...)",
            f"{missing[:5]} are not nodes of the graph",
            expected="node ids of the graph argument (a feature's lineage node id is its column)",
            found=f"{g.number_of_nodes()} nodes, e.g. {sorted(g.nodes)[:5]}",
            fix="pass targets that are node ids of the graph",
        )
    return list(dict.fromkeys(str(t) for t in wanted))


def _windows(
    lf: pl.LazyFrame,
    names: list[str],
    onset_us: int,
    window: timedelta | None,
    reference: timedelta | None,
) -> tuple[int, int, int]:
    """(step, window, reference) in microseconds; defaults counted in sampling steps."""
    for arg, d in (("window", window), ("reference", reference)):
        if d is not None and d <= timedelta(0):
            raise ValueError(f"root_cause({arg}={d!r}) must be a positive duration")
    ts = collect(lf.filter(pl.col(NODE).is_in(names)).select(pl.col(TS).unique()))
    step = sampling_step(ts[TS].to_numpy()) if ts.height else None
    step = step or 3_600_000_000
    win, ref = default_windows(step)
    return (
        step,
        win if window is None else _us(window),
        ref if reference is None else _us(reference),
    )


def _warn_unknown(lf: pl.LazyFrame, names: list[str]) -> None:
    unknown = collect(lf.filter(~pl.col(NODE).is_in(names)).select(pl.col(NODE).unique()))
    if unknown.height:
        some = sorted(unknown[NODE].to_list())[:5]
        warnings.warn(
            f"root_cause(stats=...): statistics of {unknown.height} node(s) that are not in the "
            f"graph are ignored, e.g. {some}; check the ids (stats name nodes by their text)",
            WorkspaceWarning,
            stacklevel=3,
        )


def _score_nodes(
    df: pl.DataFrame,
    *,
    onset_us: int,
    end_us: int,
    ref_start_us: int,
    step_us: int,
    tolerance_us: int,
    seasonal: bool | None,
    causes: Callable[[str], list[list[str]]],
) -> tuple[dict[str, list[StatChange]], dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]]:
    """Each (node, stat) series' change (raw, and its part the causes' same statistic does
    not explain), and its reference points (for alias checks)."""
    df = df.sort(NODE, STAT, TS)
    # sorted, so each series is one contiguous slice of two numpy arrays
    ts_all = df[TS].to_numpy()
    val_all = df[VALUE].to_numpy()
    runs = df.select(NODE, STAT).with_row_index("__i").group_by([NODE, STAT], maintain_order=True)
    bounds = runs.agg(pl.col("__i").first().alias("__lo"), pl.len().alias("__n"))
    series = {
        (nd, st): (ts_all[lo : lo + n], val_all[lo : lo + n])
        for nd, st, lo, n in bounds.iter_rows()
    }
    changes: dict[str, list[StatChange]] = {}
    refs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for (node, stat), (ts, x) in series.items():
        sh = node_shift(
            ts,
            x,
            onset_us=onset_us,
            end_us=end_us,
            ref_start_us=ref_start_us,
            tolerance_us=tolerance_us,
            step_us=step_us,
            seasonal=seasonal,
        )
        if sh is None:
            continue
        fits = [
            own_shift(
                ts,
                x,
                [series[(p, stat)] for p in side if (p, stat) in series],
                onset_us=onset_us,
                tolerance_us=tolerance_us,
            )
            for side in causes(node)
        ]
        own = min((f for f in fits if f is not None), key=lambda f: abs(f[0]), default=None)
        changes.setdefault(node, []).append(StatChange.of(stat, sh, own))
        before = ts < onset_us
        refs[(node, stat)] = (ts[before], x[before])
    return changes, refs


def _amount(sc: StatChange) -> tuple[float, float, float]:
    """(change, expected level in the post window, reference spread), in the statistic's
    units."""
    spread = abs(sc.delta / sc.z) if sc.z and np.isfinite(sc.z) else 0.0
    return float(sc.delta), float(sc.after - sc.delta), float(spread)


def _node_changes(
    g: nx.DiGraph,
    changes: dict[str, list[StatChange]],
    targets: list[str],
    step_us: int,
    mode: str,
    magnitude: bool = False,
) -> NodeChanges:
    score = {n: max(s.score for s in cs) for n, cs in changes.items()}
    status = {
        n: UNKNOWN if n not in score else CHANGED if score[n] >= _CHANGED_AT else UNCHANGED
        for n in g.nodes
    }
    moved = {n: {sc.stat for sc in cs if sc.score >= _CHANGED_AT} for n, cs in changes.items()}
    change_us: dict[str, int | None] = {}
    for n, cs in changes.items():
        best = max(cs, key=lambda s: s.score)
        change_us[n] = None if best.change_ts is None else _to_us(best.change_ts)
    return NodeChanges(
        status=status,
        score=score,
        moved=moved,
        observed={n: {sc.stat for sc in cs} for n, cs in changes.items()},
        z={n: {sc.stat: sc.z for sc in cs} for n, cs in changes.items()},
        change_us=change_us,
        targets=frozenset(targets),
        step_us=step_us,
        mode=mode,
        magnitude=magnitude,
        amount={n: {sc.stat: _amount(sc) for sc in cs} for n, cs in changes.items()},
    )


def _split_radius(
    graph: nx.DiGraph, root: Hashable, down: Iterable[Hashable], features: Iterable[Hashable] | None
) -> BlastRadius:
    down = sorted(set(down) - {root}, key=str)
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


def blast_radius(
    graph: nx.DiGraph,
    root: Hashable,
    *,
    features: Iterable[Hashable] | None = None,
    mode: str = "lineage",
) -> BlastRadius:
    """Every node a change at ``root`` can reach in the main direction (lineage: downstream,
    ``source -> derived``; call graph: its callers, transitively; bidirectional: its connected
    component), split into features / models / other."""
    if root not in graph:
        raise ValueError(f"blast_radius(root={root!r}) is not a node of the graph")
    if mode not in MODES:
        raise ValueError(f"blast_radius(mode={mode!r}) is not one of {MODES}: {_DIRECTIONS}")
    if mode == "bidirectional":
        down = nx.node_connected_component(graph.to_undirected(as_view=True), root)
    else:
        down = nx.descendants(effect_graph(graph, mode), root)
    return _split_radius(graph, root, down, features)


def _region(g: nx.DiGraph, targets: list[str], mode: str) -> set[str]:
    """The nodes whose change may explain the targets: their ancestors in lineage mode, their
    connected component when changes travel both ways."""
    out = set(targets)
    if mode == "lineage":
        for t in targets:
            out |= nx.ancestors(g, t)
        if out == set(targets) and any(g.out_degree(t) for t in targets):
            warnings.warn(
                f"root_cause: the targets have no upstream nodes, only downstream ones; "
                f"{_DIRECTIONS}",
                WorkspaceWarning,
                stacklevel=3,
            )
        return out
    und = g.to_undirected(as_view=True)
    for t in targets:
        out |= nx.node_connected_component(und, t)
    return out


def _aliases(g: nx.DiGraph, info: NodeChanges, refs: dict, mode: str) -> dict[str, list[str]]:
    """representative -> its aliases; the aliases leave the walk's changed set (passable)."""
    groups: dict[str, list[str]] = {}
    for group in alias_groups(g, info, refs):
        rep = representative(group, g, mode)
        groups[rep] = [n for n in group if n != rep]
        for n in groups[rep]:
            info.status[n] = _ALIAS
    return groups


def _candidates(
    g: nx.DiGraph,
    info: NodeChanges,
    changes: dict[str, list[StatChange]],
    region: set[str],
    alias: dict[str, list[str]],
) -> tuple[list[dict], dict[str, list[str]]]:
    """Candidate fields (string ids) for every changed node in the region, unsorted."""
    changed = [n for n in g.nodes if info.status[n] == CHANGED]
    reach = {n: walk(g, n, info) for n in changed}
    explained_by, roots = roots_of(changed, reach, info)
    affected = {n for n in changed if n in region}
    out = []
    for n in sorted(affected):
        expl = [v for v in reach[n] if info.status[v] in (CHANGED, _ALIAS)]
        group = {n, *alias.get(n, ())}
        hit = sorted((group | set(reach[n])) & info.targets)
        cov_aff = len(({n} | set(expl)) & affected) / max(len(affected), 1)
        cov_t = len(hit) / len(info.targets)
        s = info.score[n]
        factor = 1.0 if n in roots else _EXPLAINED_DISCOUNT
        above = sorted(u for u in explained_by[n] if u in roots)
        out.append(
            {
                "node": n,
                "score": s * (0.4 + 0.3 * cov_aff + 0.3 * cov_t) * factor,
                "confidence": s * cov_t * factor,
                "is_root": n in roots,
                "changed_stats": tuple(
                    sorted(
                        (c for c in changes[n] if c.score >= _CHANGED_AT), key=lambda c: -c.score
                    )
                ),
                "explained": sorted(expl),
                "targets_explained": hit,
                "explained_by": above or explained_by[n],
                "aliases": alias.get(n, []),
            }
        )
    return out, reach


def _rank(g: nx.DiGraph, rows: list[dict]) -> list[dict]:
    """Roots that reach a target first (a bigger change that reaches none never outranks a
    smaller one that does), then by score; ties to the one that explains more, then the
    higher (fewer ancestors)."""
    depth = {r["node"]: len(nx.ancestors(g, r["node"])) for r in rows}
    return sorted(
        rows,
        key=lambda r: (
            not r["targets_explained"],
            -r["score"],
            -len(r["explained"]),
            depth[r["node"]],
            r["node"],
        ),
    )


def _candidates_in_user_ids(
    g: nx.DiGraph, rows: list[dict], orig: Callable[[str], Hashable]
) -> tuple[RootCandidate, ...]:
    """The ranked rows as candidates named by the caller's own node ids (the walk itself
    runs on their text)."""
    return tuple(
        RootCandidate(
            node=orig(r["node"]),
            kind=_kind(g, r["node"]),
            score=float(r["score"]),
            confidence=float(r["confidence"]),
            is_root=r["is_root"],
            changed_stats=r["changed_stats"],
            explained=tuple(map(orig, r["explained"])),
            targets_explained=tuple(map(orig, r["targets_explained"])),
            explained_by=tuple(map(orig, r["explained_by"])),
            aliases=tuple(map(orig, r["aliases"])),
        )
        for r in rows
    )


def root_cause(
    graph: nx.DiGraph,
    stats: object,
    targets: Sequence[Hashable] | Hashable,
    onset: datetime,
    *,
    window: timedelta | None = None,
    reference: timedelta | None = None,
    features: Iterable[Hashable] | None = None,
    mode: str = "lineage",
    seasonal: bool | None = None,
    magnitude: bool = False,
    symptom: str | Sequence[str] | None = "auto",
) -> RootCauseResult:
    """Rank the root causes of the targets' change at ``onset``.

    ``graph``: a networkx DiGraph with any hashable node ids, node attribute ``kind``
    optional. Its edges are read by ``mode``: ``"lineage"`` (default) -- edges point
    downstream, ``source -> derived``, and a change flows along them only; ``"call_graph"``
    -- edges point ``caller -> callee``; a failing callee shows in its callers and a failing
    caller moves its callees (fewer calls, retries), so changes travel both ways and the
    evidence decides who explains whom: a callee never explains a caller whose rise is
    clearly more than its callees' rises can carry (a callee's rise d reaches its caller as
    at least d once and at most d times the ratio of their levels; a caller above 1.15x that
    and 3 reference spreads changed on its own, and is no alias of its callee), then the
    earlier (or, with ``magnitude``, larger) change, then the callee; a service call
    graph in lineage mode must be reversed first. ``"bidirectional"``: both ways, no
    preferred direction.

    ``stats``: (ts, node, stat, value) rows, pandas or polars, nodes named by their text
    (``str(node)``); rows of nodes not in the graph are ignored with a warning. Where nodes
    report several kinds of statistic (latency, errors, request counts), the ranking reads
    only the symptom's (``symptom``): other kinds move with load and retries everywhere and
    dilute the evidence. ``targets``:
    node ids whose change is to be explained. The post window is [onset, onset + window), the
    reference [onset - reference, onset); both default to a count of the stats' sampling step
    (6 h / 7 d at an hourly step, 30 min / 7 d at 5 minutes, 6 d / 168 d daily).
    ``seasonal``: None (default) uses a time-of-day profile only where every slot has 5
    reference points and the profile lowers the noise; False never, True whenever slots have
    3. ``features`` marks feature nodes for the blast radius when the graph has no kinds.
    ``magnitude`` (two-way modes): let the clearly larger change decide which of two
    neighbours that changed at the same step explains the other; off by default, as its
    measured effect on real incidents was to credit effects (see
    :mod:`hawknb.kernels.lineage_graph`).
    ``symptom``: the statistic(s) the ranking reads. ``"auto"`` (default): in the two-way
    modes the targets' statistics whose |z| is at least half their largest (an outage seen
    in availability is read in availability, not in the latency that moved everywhere with
    it), every statistic in lineage mode; None: every statistic; a name or names: those.
    ``RootCauseResult.symptom`` says which were read.
    """
    if symptom is not None and not isinstance(symptom, str):
        symptom = tuple(symptom)
        if not symptom or not all(isinstance(x, str) for x in symptom):
            raise ValueError(
                f"root_cause(symptom={symptom!r}): pass 'auto', None, a statistic's name or a "
                "non-empty list of names"
            )
    g, back = _string_graph(graph, mode)
    tgt = _check_targets(g, targets)
    onset_us = _to_us(onset)
    lf = _stats_lazy(stats)
    names = list(g.nodes)
    step, win, ref = _windows(lf, names, onset_us, window, reference)
    lo, hi = onset_us - ref, onset_us + win
    lf = lf.filter((pl.col(TS) >= lo) & (pl.col(TS) < hi))
    _warn_unknown(lf, names)
    changes, refs = _score_nodes(
        collect(lf.filter(pl.col(NODE).is_in(names))),
        onset_us=onset_us,
        end_us=hi - 1,
        ref_start_us=lo,
        step_us=step,
        tolerance_us=max(2 * step, win // 2),
        seasonal=seasonal,
        causes=lambda n: causes_of(g, n, mode),
    )
    read = _symptom_stats(changes, tgt, symptom, mode)
    seen = {sc.stat for cs in changes.values() for sc in cs}
    if symptom != "auto" and read and not seen & set(read):
        raise ValueError(
            f"root_cause(symptom={symptom!r}): no node has a statistic of that name around the "
            f"onset; the stats have {sorted(seen)[:10]}"
        )
    changes, refs = _only_stats(changes, refs, read)
    info = _node_changes(g, changes, tgt, step, mode, magnitude)
    info.beyond = own_excess(g, info)
    region = _region(g, tgt, mode)
    alias = _aliases(g, info, refs, mode)
    rows, reach = _candidates(g, info, changes, region, alias)
    rows = _rank(g, rows)
    orig = back.__getitem__
    cands = _candidates_in_user_ids(g, rows, orig)
    radius = None
    if rows:
        top = rows[0]["node"]
        down = reach[top] if mode == "bidirectional" else blast_radius(g, top, mode=mode).nodes
        radius = _split_radius(graph, orig(top), map(orig, down), features)
    status = {
        orig(n): CHANGED if s == _ALIAS else s
        for n, s in info.status.items()
        if n in region or n in info.score
    }
    return RootCauseResult(
        candidates=cands,
        blast_radius=radius,
        status=status,
        targets=tuple(map(orig, tgt)),
        onset=onset,
        mode=mode,
        step=timedelta(microseconds=step),
        window=timedelta(microseconds=win),
        reference=timedelta(microseconds=ref),
        symptom=read,
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
