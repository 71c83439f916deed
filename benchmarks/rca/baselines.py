"""The baselines scored in the same run as root_cause.

* ``max_z``: rank the candidate nodes by their largest robust |z| (post-window median against
  the reference median, in reference MADs) over their statistics -- "the largest anomaly".
* ``random_walk``: the graph walk of MicroCause / CloudRanger / the PetShop baselines: from the
  target, step to a neighbour towards the causes with probability proportional to its anomaly
  score (backward steps at 0.2 of it, a self-loop for a node more anomalous than its
  neighbours), restart at the target with 0.15; rank nodes by visit probability.
* ``traversal``: the simple graph walk of the PetShop benchmark (after Budhathoki et al.):
  from the target, follow anomalous nodes (|z| >= 3) towards the causes; anomalous nodes
  reached whose causes are all normal are the roots, ranked by |z|, then the rest by |z|.
"""

from __future__ import annotations

from datetime import timedelta

import networkx as nx
import numpy as np
import polars as pl

from .cases import Case


def max_abs_z(case: Case, window: timedelta, reference: timedelta) -> dict:
    """node -> largest robust |z| over its statistics (plain, no seasonality)."""
    lo, hi = case.onset - reference, case.onset + window
    df = case.stats.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
    post = pl.col("ts") >= case.onset
    agg = df.group_by("node", "stat").agg(
        pl.col("value").filter(~post).median().alias("m"),
        (
            (pl.col("value").filter(~post) - pl.col("value").filter(~post).median()).abs().median()
            * 1.4826
        ).alias("s"),
        pl.col("value").filter(post).median().alias("a"),
    )
    agg = agg.with_columns(
        ((pl.col("a") - pl.col("m")).abs() / pl.max_horizontal(pl.col("s"), 1e-9)).alias("z")
    )
    out = agg.group_by("node").agg(pl.col("z").max())
    return dict(zip(out["node"].cast(pl.String).to_list(), out["z"].to_list(), strict=True))


def cause_graph(case: Case) -> nx.DiGraph:
    """Edges effect -> cause: the direction a walk from the symptom goes."""
    return case.graph.reverse(copy=True) if case.mode == "lineage" else case.graph.copy()


def candidates(case: Case) -> set:
    """The nodes every method may rank: possible causes of the target."""
    g = cause_graph(case)
    out = set(case.targets)
    for t in case.targets:
        out |= nx.descendants(g, t) if case.mode == "lineage" else set(g.nodes)
    return out


def rank_max_z(case: Case, z: dict) -> list:
    nodes = candidates(case)
    return sorted(nodes, key=lambda n: (-z.get(str(n), 0.0), str(n)))


def rank_random_walk(case: Case, z: dict, rho: float = 0.2, restart: float = 0.15) -> list:
    g = cause_graph(case)
    nodes = list(g.nodes)
    idx = {n: i for i, n in enumerate(nodes)}
    score = np.array([z.get(str(n), 0.0) for n in nodes])
    score = score / (score.max() + 1e-12)
    p = np.zeros((len(nodes), len(nodes)))
    for u in nodes:
        i = idx[u]
        for v in g.successors(u):
            p[i, idx[v]] += score[idx[v]]
        for v in g.predecessors(u):
            p[i, idx[v]] += rho * score[idx[v]]
        nb = [score[idx[v]] for v in (*g.successors(u), *g.predecessors(u))]
        p[i, i] += max(0.0, score[i] - max(nb, default=0.0))
    rows = p.sum(axis=1, keepdims=True)
    p = np.where(rows > 0, p / np.where(rows > 0, rows, 1), 0.0)
    start = np.zeros(len(nodes))
    for t in case.targets:
        start[idx[t]] = 1 / len(case.targets)
    pi = start.copy()
    for _ in range(200):
        pi = (1 - restart) * pi @ p + restart * start
    allowed = candidates(case)
    return sorted((n for n in nodes if n in allowed), key=lambda n: (-pi[idx[n]], str(n)))


def rank_traversal(case: Case, z: dict, threshold: float = 3.0) -> list:
    g = cause_graph(case)
    bad = {n for n in g.nodes if z.get(str(n), 0.0) >= threshold}
    seen, stack = set(), [t for t in case.targets]
    while stack:
        u = stack.pop()
        if u in seen:
            continue
        seen.add(u)
        stack += [v for v in g.successors(u) if v in bad]
    roots = [n for n in seen if n in bad and not any(v in bad for v in g.successors(n))]
    first = sorted(roots, key=lambda n: -z.get(str(n), 0.0))
    rest = sorted(candidates(case) - set(first), key=lambda n: (-z.get(str(n), 0.0), str(n)))
    return first + rest
