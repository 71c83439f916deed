"""The published synthetic protocol: random causal DAGs, a linear structural equation model,
root-cause outliers injected at 1-3 nodes.

As in the causal root-cause literature (Budhathoki et al., "Causal structure-based root cause
analysis of outliers", ICML 2022; the simulated data of Salesforce's PyRCA; RCD): an
Erdos-Renyi DAG over a random topological order, X_j = sum_i w_ij X_i + e_j with
|w_ij| ~ U(0.5, 1.5) (random sign) and Gaussian noise of random scale; the anomalous period
adds an outlier of 3-6 noise sigmas to the *noise term* of each root cause, so the outlier
flows to its descendants through the same equations. The target is a node downstream of the
roots (the outlier to explain). Samples are i.i.d. over time (no seasonality), one per hour.
"""

from __future__ import annotations

from datetime import timedelta

import networkx as nx
import numpy as np

from .cases import START, Case, frame

NORMAL = 300
POST = 6


def random_dag(rng: np.random.Generator, n: int, degree: float) -> nx.DiGraph:
    """Erdos-Renyi DAG: each pair (i < j) of a random order linked with p = degree / (n-1)."""
    order = rng.permutation(n)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    p = degree / max(n - 1, 1)
    for a in range(n):
        for b in range(a + 1, n):
            if rng.random() < p:
                g.add_edge(int(order[a]), int(order[b]))
    return g


def _roots_and_target(rng: np.random.Generator, g: nx.DiGraph, k: int) -> tuple[list, int] | None:
    """k roots with a common descendant (the target), if the graph has them."""
    with_desc = [n for n in g.nodes if g.out_degree(n)]
    if not with_desc:
        return None
    first = int(rng.choice(with_desc))
    target = int(rng.choice(sorted(nx.descendants(g, first))))
    anc = sorted(nx.ancestors(g, target) - {first})
    if len(anc) < k - 1:
        return None
    others = [int(x) for x in rng.choice(anc, size=k - 1, replace=False)] if k > 1 else []
    return [first, *others], target


def dag_case(seed: int) -> Case:
    """One case of the protocol; nodes are integers (as in the published code)."""
    rng = np.random.default_rng(seed)
    while True:
        n = int(rng.integers(10, 51))
        g = random_dag(rng, n, degree=float(rng.uniform(1.5, 3.0)))
        k = int(rng.choice([1, 1, 2, 3]))
        picked = _roots_and_target(rng, g, k)
        if picked:
            break
    roots, target = picked
    total = NORMAL + POST
    scale = rng.uniform(0.5, 2.0, n)
    noise = rng.normal(0, 1, (total, n)) * scale
    for r in roots:
        noise[NORMAL:, r] += rng.uniform(3, 6) * scale[r] * rng.choice([-1, 1])
    x = np.zeros((total, n))
    for j in nx.topological_sort(g):
        w = [rng.uniform(0.5, 1.5) * rng.choice([-1, 1]) for _ in g.predecessors(j)]
        parents = list(g.predecessors(j))
        x[:, j] = noise[:, j] + (x[:, parents] @ np.asarray(w) if parents else 0.0)
    step = timedelta(hours=1)
    stats = frame({(j, "value"): x[:, j] for j in range(n)}, step)
    return Case(
        name=f"dag-{seed}",
        graph=g,
        stats=stats,
        targets=[target],
        onset=START + step * NORMAL,
        roots=set(roots),
        mode="lineage",
    )
