"""Explaining away on a graph whose edges carry effects one way or both.

Which node's change explains which, given each node's status and changed statistics (see
:mod:`hawknb.kernels.lineage`). Node ids here are strings; the caller maps them back.

Direction conventions (``mode``):

* ``"lineage"``: edges point downstream, ``source -> derived``; a change travels along them
  only. The explained node is always the one downstream.
* ``"call_graph"``: edges point ``caller -> callee``. A failing callee shows in its callers'
  latency and errors (the main direction, against the edges), but a failing caller also moves
  its callees (fewer calls, retries, slower client-side calls: along the edges). Which of two
  neighbours that changed together explains the other is decided by evidence: first
  capacity -- a callee never explains a caller whose mean (not a percentile) rose clearly
  more than its callees' rises can carry (one call's worth of the rise, or the callee's
  share of the caller's time, bounded by their levels and by their reference noise,
  whichever is larger: :func:`own_excess`), however early the callee moved;
  then the earlier change point; with ``magnitude`` on, also the clearly larger change on
  the statistics both moved in, else the one whose changed statistics include the other's;
  a tie falls back to the main direction. ``magnitude`` is off by default: on the PetShop benchmark's real
  incidents an effect's robust z was as often larger than its cause's as smaller (noise
  levels differ from node to node), and the magnitude rule cut top-1 from 11 to 4 of 34
  tuning issues (benchmarks/results/rca_petshop.md); our own service simulation, where a slow
  service's retries move its callees less than it moves, is the case it was built for.
* ``"bidirectional"``: like ``call_graph`` with no preferred direction; a tie leaves both
  explaining each other, and of a group of nodes that explain one another only the strongest
  is a root.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

CHANGED, UNCHANGED, UNKNOWN = "changed", "unchanged", "unknown"
MODES = ("lineage", "call_graph", "bidirectional")
#: a change this many times larger (in robust z) than its neighbour's explains it
_DOMINANT_Z = 1.2
#: call graph: a caller whose rise exceeds what its callees can carry by this share of it
#: and by this many reference spreads has a change of its own (see ``own_excess``)
_OWN_EXCESS = 1.15
_OWN_EXCESS_Z = 3.0
#: statistics named as a percentile or an extreme (``latency_p95``, ``p99_ms``, ``median``,
#: ``max``): they do not add up along calls, so the capacity check does not read them
_NOT_ADDITIVE = re.compile(
    r"(?:^|[^a-z0-9])"
    r"(?:p\d{1,3}(?:\.\d+)?|pct\d*|percentile|quantile|median|max(?:imum)?|min(?:imum)?)"
    r"(?:[^a-z0-9]|$)",
    re.IGNORECASE,
)
#: correlation of step-to-step differences in the reference from which two nodes are aliases
_ALIAS_CORR = 0.95


@dataclass
class NodeChanges:
    """What the explaining away needs to know of the scored nodes."""

    status: dict[str, str]
    score: dict[str, float]
    moved: dict[str, set[str]]
    observed: dict[str, set[str]]
    z: dict[str, dict[str, float]]
    change_us: dict[str, int | None]
    targets: frozenset[str]
    step_us: int
    mode: str
    #: whether a clearly larger change (robust z) counts as evidence of being the cause
    magnitude: bool = False
    #: per node and statistic: (change, expected level at the onset, reference spread) in
    #: the statistic's own units, for the call-graph capacity check (:func:`own_excess`)
    amount: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    #: call graph: changed nodes whose change is more than their callees can carry
    beyond: frozenset[str] = frozenset()


def neighbours(g: nx.DiGraph, u: str, mode: str) -> list[tuple[str, bool]]:
    """(neighbour, along the main direction) pairs a change at ``u`` can travel to."""
    if mode == "lineage":
        return [(v, True) for v in g.successors(u)]
    if mode == "call_graph":
        return [(v, True) for v in g.predecessors(u)] + [(v, False) for v in g.successors(u)]
    return [(v, True) for v in g.predecessors(u)] + [(v, True) for v in g.successors(u)]


def causes_of(g: nx.DiGraph, u: str, mode: str) -> list[list[str]]:
    """The groups of nodes whose same statistic drives ``u``'s, for the own-change fit: its
    sources in lineage mode. None when changes travel both ways: there the cause depends on
    the statistic (a caller's latency follows its callees, a callee's request count its
    callers), and a fit in the wrong direction reads the cause's change as the effect's own
    (measured: top-1 0.93 -> 0.72 on the service simulation's tune seeds)."""
    return [sorted(g.predecessors(u))] if mode == "lineage" else []


def effect_graph(g: nx.DiGraph, mode: str) -> nx.DiGraph:
    """The graph with edges in the main direction a change travels (cause -> effect)."""
    if mode == "lineage":
        return g
    if mode == "call_graph":
        return g.reverse(copy=False)
    return nx.compose(g, g.reverse(copy=True))


def _zmax(info: NodeChanges, n: str, stats: set[str]) -> float:
    zs = [abs(info.z[n][s]) for s in stats if s in info.z.get(n, {})]
    return max(zs, default=0.0)


def dominance(a: str, b: str, info: NodeChanges) -> int:
    """+1 when a's change explains b's rather than the reverse, -1 for the reverse, 0 when
    the evidence cannot tell.

    In order: the earlier change point (by more than one step); then, with
    ``info.magnitude``, the clearly larger robust z (``_DOMINANT_Z`` times) on the statistics
    both changed in -- a change loses strength as it travels where nodes' noise is alike --
    and changed statistics that strictly include the other's."""
    ta, tb = info.change_us.get(a), info.change_us.get(b)
    if ta is not None and tb is not None and abs(ta - tb) > info.step_us:
        return 1 if ta < tb else -1
    return _larger(a, b, info) if info.magnitude else 0


def _larger(a: str, b: str, info: NodeChanges) -> int:
    """+1 / -1 when a's / b's change is clearly the larger one, else 0 (see `dominance`)."""
    common = info.observed.get(a, set()) & info.observed.get(b, set())
    ma, mb = info.moved.get(a, set()) & common, info.moved.get(b, set()) & common
    stats = (ma & mb) or (ma | mb) or (info.moved.get(a, set()) | info.moved.get(b, set()))
    za, zb = _zmax(info, a, stats), _zmax(info, b, stats)
    if za > _DOMINANT_Z * zb:
        return 1
    if zb > _DOMINANT_Z * za:
        return -1
    if mb < ma:
        return 1
    if ma < mb:
        return -1
    return 0


def _carriers(g: nx.DiGraph, u: str, stat: str, info: NodeChanges) -> list[str]:
    """u's callees that report ``stat`` around the onset, looking through callees that do
    not (an unmonitored hop passes its callees' change on)."""
    out, seen, stack = [], {u}, list(g.successors(u))
    while stack:
        w = stack.pop()
        if w in seen:
            continue
        seen.add(w)
        if stat in info.amount.get(w, {}):
            out.append(w)
        else:
            stack.extend(g.successors(w))
    return out


def _beyond(g: nx.DiGraph, u: str, stat: str, info: NodeChanges) -> bool:
    """Whether u's rise in ``stat`` is clearly more than its callees' rises can carry.

    A caller's latency is its own time plus its calls' (its failure rate: its own plus its
    calls'). A callee that rose by d passes on d per call: at least d once (a call made on
    every request; real traces show this 1:1 transfer even where the caller's mean is below
    the callee's), and at most the share of the caller's time the calls take, which is
    bounded twice: by ``level(u) / level(w)`` (the calls' shares add up to at most all of
    the caller's time) and by ``spread(u) / spread(w)`` (the callee's own reference noise
    reaches the caller times the share, and the caller's noise is at least that: a callee
    ten times noisier than its caller cannot be a large part of it). Without the second
    bound a slow service over a callee that its retries slowed as much, relatively, was
    within the level bound and the tie of their change points credited the callee (service
    simulation tuning seeds 17 and 28: rise 1.30x and 1.50x the noise bound, 0.89x and
    1.05x the level bound). The capacity is the larger of one call and the share bound,
    for the callee that carries most; u is beyond it when its rise exceeds it by more than
    ``_OWN_EXCESS`` of it and by ``_OWN_EXCESS_Z`` combined reference spreads. Rises only:
    what adds up along calls (time, failures) grows with a fault, while what drops with one
    (availability, a success rate) is the complement of such a sum. Never for a node
    without a monitored callee or with a callee whose level is not positive."""
    d_u, lvl_u, sd_u = info.amount[u][stat]
    if not (lvl_u > 0 and d_u > 0):
        return False
    cap, noise, found = 0.0, 0.0, False
    for w in _carriers(g, u, stat, info):
        d_w, lvl_w, sd_w = info.amount[w][stat]
        if not lvl_w > 0:
            return False
        found = True
        share = lvl_u / lvl_w
        if sd_u > 0 and sd_w > 0:
            share = min(share, sd_u / sd_w)
        gain = max(1.0, share)
        if gain * d_w > cap:
            cap, noise = gain * d_w, gain * sd_w
    if not found:
        return False
    spread = max(float(np.hypot(sd_u, noise)), 1e-12)
    return d_u > _OWN_EXCESS * cap and d_u - cap >= _OWN_EXCESS_Z * spread


def own_excess(g: nx.DiGraph, info: NodeChanges) -> frozenset[str]:
    """Call graph: the changed nodes whose rise, in a statistic they moved in that adds up
    along calls (:func:`adds_up`), is clearly more than their callees can carry
    (:func:`_beyond`): no callee explains them, whatever the timing, and they are no alias
    of a callee. Percentiles are not read: a caller's p95 is not its own p95 plus its
    calls' (4% slow calls leave the callee's p95 where it was and, at three calls a
    request, move 12% of the caller's requests: its p95 by the whole slowdown), so one
    percentile over capacity says nothing (PetShop's petInfo table lost its top rank to
    its caller PetSearch, whose p95 rose beyond the table's while its mean did not)."""
    if info.mode != "call_graph":
        return frozenset()
    return frozenset(
        u
        for u, state in info.status.items()
        if state == CHANGED
        and any(_beyond(g, u, s, info) for s in info.moved.get(u, ()) if adds_up(s))
    )


def adds_up(stat: str) -> bool:
    """Whether a statistic may add up along calls -- a mean, a rate, a sum -- rather than
    a percentile or an extreme, judged by its name (:data:`_NOT_ADDITIVE`): the kernel
    knows statistics only by name, and a mean is what the capacity bounds hold for (the
    mean of a sum is the sum of the means; a percentile of it is not)."""
    return not _NOT_ADDITIVE.search(stat)


def _hop(a: str, b: str, main: bool, info: NodeChanges) -> bool:
    """May the change of ``a`` explain its changed neighbour ``b`` over this edge? In a call
    graph a callee never explains a caller whose rise its callees cannot carry
    (:func:`own_excess`), whatever the timing."""
    if info.mode == "lineage":
        return True
    if info.mode == "call_graph" and main and b in info.beyond:
        return False
    d = dominance(a, b, info)
    if info.mode == "call_graph":
        return d > 0 or (d == 0 and main)
    return d >= 0


def _same_change(start: str, v: str, info: NodeChanges) -> bool:
    """v's change can come from start's unless the statistics say otherwise: start changed in
    a statistic that v also reports and v's held (a row-count drop upstream does not explain
    a shifted mean downstream whose row count held). Nodes often report different statistics
    (a table its row count, a feature its mean): a change in a statistic the other node does
    not report is no evidence either way, so it does not cut the chain."""
    moved_start, moved_v = info.moved.get(start, set()), info.moved.get(v, set())
    if moved_start & moved_v:
        return True
    comparable = info.observed.get(start, set()) & info.observed.get(v, set())
    return not (moved_start & comparable)


def walk(g: nx.DiGraph, start: str, info: NodeChanges) -> list[str]:
    """Nodes a change at ``start`` reaches (start excluded): through changed, unknown and
    target nodes (a target that did not move is where the walk ends up, not a wall), never
    through an observed, unchanged node. A changed node is entered only if it changed in a
    statistic ``start`` also changed in (when they share any) and, in the two-way modes, if
    the last changed node on the path explains it (:func:`dominance`)."""
    seen = {start}
    out: list[str] = []
    queue = deque([(start, start)])
    while queue:
        u, last = queue.popleft()
        for v, main in neighbours(g, u, info.mode):
            state = info.status.get(v, UNKNOWN)
            if v in seen or (state == UNCHANGED and v not in info.targets):
                continue
            if state == CHANGED and not (
                _same_change(start, v, info) and _hop(last, v, main, info)
            ):
                continue
            seen.add(v)
            out.append(v)
            queue.append((v, v if state == CHANGED else last))
    return out


def roots_of(
    changed: list[str], reach: dict[str, list[str]], info: NodeChanges
) -> tuple[dict[str, list[str]], set[str]]:
    """Who explains each changed node, and the roots: the strongest node of every group of
    nodes that explain one another and that nothing outside the group explains."""
    explains = nx.DiGraph()
    explains.add_nodes_from(changed)
    cset = set(changed)
    explains.add_edges_from((u, v) for u in changed for v in reach[u] if v in cset)
    cond = nx.condensation(explains)
    roots: set[str] = set()
    for comp in cond.nodes:
        if cond.in_degree(comp) == 0:
            members = cond.nodes[comp]["members"]
            roots.add(
                min(members, key=lambda n: (-info.score[n], -_zmax(info, n, info.moved[n]), n))
            )
    explained_by = {
        v: sorted(u for u in explains.predecessors(v) if v not in roots) for v in changed
    }
    return explained_by, roots


def _diff_corr(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Correlation of the step-to-step differences of two series on their shared timestamps
    (differences, so a shared daily cycle does not make two services look alike)."""
    _, ia, ib = np.intersect1d(a[0], b[0], return_indices=True)
    if ia.size < 8:
        return 0.0
    da, db = np.diff(a[1][ia]), np.diff(b[1][ib])
    ok = np.isfinite(da) & np.isfinite(db)
    da, db = da[ok], db[ok]
    if da.size < 6 or da.std() == 0 or db.std() == 0:
        return 0.0
    return float(np.corrcoef(da, db)[0, 1])


def alias_groups(
    g: nx.DiGraph,
    info: NodeChanges,
    reference: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
) -> list[list[str]]:
    """Groups of adjacent changed nodes that are views of one thing (a load balancer and its
    service, a table and its copy): the same statistics changed, and in the reference each of
    them moved step by step identically (difference correlation >= ``_ALIAS_CORR``)."""
    link = nx.Graph()
    for u, v in g.edges:
        if info.status.get(u) != CHANGED or info.status.get(v) != CHANGED or u == v:
            continue
        if u in info.beyond:
            continue  # a caller that moved more than its calls can carry is not their view
        if not info.moved[u] or info.moved[u] != info.moved[v]:
            continue
        pairs = [(reference.get((u, s)), reference.get((v, s))) for s in info.moved[u]]
        if all(
            a is not None and b is not None and _diff_corr(a, b) >= _ALIAS_CORR for a, b in pairs
        ):
            link.add_edge(u, v)
    return [sorted(c) for c in nx.connected_components(link)]


def representative(group: list[str], g: nx.DiGraph, mode: str) -> str:
    """The member that stands for an alias group: the most upstream in the direction effects
    travel (lineage: the source; call graph: the callee), else the first by name."""
    eff = effect_graph(g, mode).subgraph(group)
    tops = [n for n in group if eff.in_degree(n) == 0] if mode != "bidirectional" else []
    return sorted(tops or group)[0]


__all__ = [
    "CHANGED",
    "MODES",
    "UNCHANGED",
    "UNKNOWN",
    "NodeChanges",
    "adds_up",
    "alias_groups",
    "causes_of",
    "dominance",
    "effect_graph",
    "neighbours",
    "own_excess",
    "representative",
    "roots_of",
    "walk",
]
