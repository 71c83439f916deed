"""Our service-graph simulation: a call graph, request / latency / availability per service
every 5 minutes, a few days of normal operation, a fault at one service, a few points after.

How a fault travels (what makes service graphs hard for a walk that only goes one way):

* its callers, transitively up to the front end, see its latency and errors (against the
  call edges);
* its callees see fewer calls (a service failing with errors gives up early) or more (a slow
  service's own calls time out and are retried), and through their load-dependent latency
  a latency change at the same moment (along the call edges);
* the failing service itself sees retries from its callers (more requests);
* a load balancer in front of a service is a second view of it: its series move with the
  service's, step by step.

Requests enter at the front end with a daily cycle; each call edge multiplies them; latency
adds the callees' latency weighted by calls; errors add up the call chain.
"""

from __future__ import annotations

from datetime import timedelta

import networkx as nx
import numpy as np

from .cases import START, Case, frame

STEP = timedelta(minutes=5)
PER_DAY = 288
POST = 4


def call_graph(rng: np.random.Generator) -> tuple[nx.DiGraph, dict[str, str]]:
    """Layered caller -> callee graph from 'frontend'; ~30% of services behind a load
    balancer node ('lb-<svc>'). Returns the graph and {lb: service}."""
    n = int(rng.integers(8, 21))
    names = ["frontend"] + [f"svc-{i:02d}" for i in range(1, n)]
    layer = {"frontend": 0}
    g = nx.DiGraph()
    g.add_node("frontend")
    for i, s in enumerate(names[1:], 1):
        callers = [c for c in names[:i] if layer[c] < 4]
        main = callers[int(rng.integers(0, len(callers)))]
        layer[s] = layer[main] + 1
        g.add_edge(main, s)
        extra = [c for c in callers if c != main and layer[c] < layer[s]]
        if extra and rng.random() < 0.3:
            g.add_edge(extra[int(rng.integers(0, len(extra)))], s)
    lbs = {}
    for s in names[1:]:
        if rng.random() < 0.3:
            lb = f"lb-{s}"
            lbs[lb] = s
            for c in list(g.predecessors(s)):
                g.remove_edge(c, s)
                g.add_edge(c, lb)
            g.add_edge(lb, s)
    return g, lbs


def _fault(rng: np.random.Generator, services: list[str]) -> dict:
    kind = str(rng.choice(["latency", "errors"]))
    return {
        "node": services[int(rng.integers(0, len(services)))],
        "kind": kind,
        "latency_x": float(rng.uniform(2.0, 6.0)) if kind == "latency" else 1.0,
        "errors": float(rng.uniform(0.05, 0.4)) if kind == "errors" else 0.0,
        "retry": float(rng.uniform(0.1, 0.8)),
        # calls to the callees: fewer for errors, retried timeouts (more) for a slowdown
        "out": float(rng.uniform(0.5, 0.9)) if kind == "errors" else float(rng.uniform(1.3, 2.5)),
    }


def _requests(g, lbs, rng, total, post, fault) -> dict[str, np.ndarray]:
    t = np.arange(total)
    load = 1 + 0.5 * np.sin(2 * np.pi * t / PER_DAY + rng.uniform(0, 2 * np.pi))
    req = {"frontend": 200 * load * (1 + rng.normal(0, 0.03, total))}
    f = fault["node"]
    # retries enter where the callers call: the load balancer in front of f, if any
    entry = next((lb for lb, s in lbs.items() if s == f), f)
    for v in nx.topological_sort(g):
        if v == "frontend":
            continue
        r = np.zeros(total)
        for u in g.predecessors(v):
            calls = 1.0 if u in lbs else g.edges[u, v]["calls"]
            out = req[u] * calls * np.where(post & (u == f), fault["out"], 1.0)
            r += out
        noise = 0.0005 if v in lbs or lbs.get(next(iter(g.predecessors(v)), "")) else 0.02
        req[v] = r * (1 + rng.normal(0, noise, total))
        if v == entry:
            req[v] = req[v] * np.where(post, 1 + fault["retry"] * max(fault["errors"], 0.2), 1.0)
    return req


def _latency_and_errors(g, lbs, rng, req, post, fault) -> tuple[dict, dict]:
    total = post.size
    lat, fail = {}, {}
    f = fault["node"]
    for v in reversed(list(nx.topological_sort(g))):
        util = req[v] / req[v][~post].mean()
        if v in lbs:
            own = 0.5 + rng.normal(0, 0.002, total)
            err = np.zeros(total)
        else:
            base = g.nodes[v]["base"]
            # load-dependent: queueing grows past 1.2x the usual load
            load = 1 + 0.3 * util + 2.0 * np.maximum(util - 1.2, 0.0)
            own = base * load * (1 + rng.normal(0, 0.03, total))
            err = np.clip(g.nodes[v]["err"] + rng.normal(0, 0.0005, total), 0, 1)
        if v == f:
            own = own * np.where(post, fault["latency_x"], 1.0)
            err = err + np.where(post, fault["errors"], 0.0)
        lat[v], fail[v] = own, err
        for w in g.successors(v):
            share = 1.0 if v in lbs else g.edges[v, w]["calls"] * g.edges[v, w]["seq"]
            lat[v] = lat[v] + share * lat[w]
            fail[v] = fail[v] + (1.0 if v in lbs else 0.5) * fail[w]
        fail[v] = np.clip(fail[v], 0, 1)
    return lat, fail


def service_case(seed: int, days: int = 3) -> Case:
    """One incident on a fresh call graph; the front end's alert is the target."""
    rng = np.random.default_rng(seed)
    g, lbs = call_graph(rng)
    for u, v in g.edges:
        g.edges[u, v]["calls"] = float(rng.uniform(0.5, 3.0))
        g.edges[u, v]["seq"] = float(rng.uniform(0.3, 1.0))
    for v in g.nodes:
        g.nodes[v]["base"] = float(rng.uniform(5, 50))
        g.nodes[v]["err"] = float(rng.uniform(0.001, 0.01))
    services = [s for s in g.nodes if s != "frontend" and s not in lbs]
    fault = _fault(rng, services)
    normal = days * PER_DAY + int(rng.integers(0, PER_DAY))
    total = normal + POST
    post = np.arange(total) >= normal
    req = _requests(g, lbs, rng, total, post, fault)
    lat, fail = _latency_and_errors(g, lbs, rng, req, post, fault)
    series = {}
    for v in g.nodes:
        series[(v, "requests")] = req[v]
        series[(v, "latency_ms")] = lat[v]
        series[(v, "availability")] = 1 - fail[v]
    aliases = {fault["node"]: {lb for lb, s in lbs.items() if s == fault["node"]}}
    plain = nx.DiGraph()
    plain.add_edges_from(g.edges)
    return Case(
        name=f"svc-{seed}-{fault['kind']}",
        graph=plain,
        stats=frame(series, STEP),
        targets=["frontend"],
        onset=START + STEP * normal,
        roots={fault["node"]},
        mode="call_graph",
        aliases=aliases,
    )
