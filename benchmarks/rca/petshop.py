"""The PetShop root-cause benchmark (Amazon, 2023) as `Case`s, and its own traversal method.

PetShop is a public data set of a 41-component microservice application: a call graph
(``graph.csv``, adjacency, edges caller -> callee), two days of normal operation per traffic
scenario (``noissue/metrics.csv``) and 68 injected issues (``{train,test}/issue_N/``: five
5-minute points around the SLO violation and ``target.json`` naming the alerting node and
metric and the true root). It is not shipped with hawknb (CC-BY-4.0 data, 7 MB): pass the
folder of a checkout of https://github.com/amazon-science/petshop-root-cause-analysis
(its ``dataset/`` folder) to ``benchmarks/rca_petshop.py --data``.

The issue's points and the normal period were recorded on different days, so a case puts the
normal series in front of the issue, shifted by whole days (time of day kept), and the onset
at the protocol's trigger point: the third issue point, or the first later one at which the
target is anomalous, as the data set's own evaluation does.

`traversal_scores` re-implements the data set's published baseline from its description
(not its code): per node, the target metric and statistic scored as |x - median| / MAD of the
normal period; nodes scoring above 5 at the trigger point are anomalous; in the reversed call
graph (callee -> caller: the direction latency travels) an anomalous node with no anomalous
parent is a root; roots with an all-anomalous path to the target rank by the largest sum of
scores along such a path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import polars as pl

from .cases import Case

SCENARIOS = ("low_traffic", "high_traffic", "temporal_traffic1", "temporal_traffic2")
#: the data set's trigger row and anomaly threshold (MAD score)
TRIGGER_ROW, THRESHOLD = 2, 5.0
DAY = 86_400.0


@dataclass
class Scenario:
    """One traffic scenario: the call graph and the normal period's metrics."""

    name: str
    graph: nx.DiGraph
    normal: pd.DataFrame


@dataclass
class Issue:
    """One injected issue: its metrics, the alerting node/metric/statistic and the true root."""

    name: str
    split: str
    metrics: pd.DataFrame
    target: str
    metric: str
    statistic: str
    root: str


def _metrics(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    df.index = df.index.astype(float)
    return df


def load_scenario(root: Path, name: str) -> tuple[Scenario, list[Issue]] | None:
    """The scenario and its issues, or None when its normal period is not in the checkout."""
    base = root / name
    if not (base / "noissue" / "metrics.csv").exists():
        return None
    adj = pd.read_csv(base / "graph.csv", index_col=0)
    graph = nx.from_pandas_adjacency(adj, create_using=nx.DiGraph)
    scen = Scenario(name, graph, _metrics(base / "noissue" / "metrics.csv"))
    issues = []
    for split in ("train", "test"):
        for d in sorted((base / split).iterdir(), key=lambda p: int(p.name.split("_")[-1])):
            t = json.loads((d / "target.json").read_text())
            issues.append(
                Issue(
                    name=f"{name}/{split}/{d.name}",
                    split=split,
                    metrics=_metrics(d / "metrics.csv"),
                    target=t["target"]["node"],
                    metric=t["target"]["metric"],
                    statistic=t["target"]["agg"],
                    root=t["root_cause"]["node"],
                )
            )
    return scen, issues


def _column(df: pd.DataFrame, metric: str, statistic: str) -> pd.DataFrame:
    sub = df.loc[:, (slice(None), [metric], [statistic])]
    sub.columns = [c[0] for c in sub.columns]
    return sub


def mad_scores(scen: Scenario, issue: Issue) -> pd.DataFrame:
    """|x - median| / MAD of the normal period, per node, on the issue's points (target
    metric and statistic); a node constant in the normal period scores |x - mean|."""
    normal = _column(scen.normal, issue.metric, issue.statistic)
    abnormal = _column(issue.metrics, issue.metric, issue.statistic)
    out = {}
    for node in abnormal.columns:
        ref = normal[node].dropna().to_numpy() if node in normal else np.array([])
        x = abnormal[node].to_numpy(dtype=float)
        if ref.size < 10:
            continue
        med = np.median(ref)
        mad = np.median(np.abs(ref - med))
        s = np.abs(x - med) / mad if mad > 0 else np.abs(x - ref.mean())
        out[node] = np.nan_to_num(s, nan=0.0)
    return pd.DataFrame(out, index=abnormal.index)


def trigger_row(scores: pd.DataFrame, target: str) -> int:
    """The data set's trigger point: row 2, or the first later row where the target is
    anomalous."""
    col = scores[target].to_numpy() if target in scores else np.zeros(len(scores))
    for i in range(TRIGGER_ROW, len(col)):
        if col[i] > THRESHOLD:
            return i
    return TRIGGER_ROW


def traversal_scores(scen: Scenario, issue: Issue) -> list[str]:
    """The published traversal baseline's ranking (empty when the target is not anomalous)."""
    scores = mad_scores(scen, issue)
    row = trigger_row(scores, issue.target)
    at = scores.iloc[row]
    bad = {n: float(v) for n, v in at.items() if v > THRESHOLD}
    if issue.target not in bad:
        return []
    causal = scen.graph.reverse(copy=True)
    roots = [n for n in bad if n in causal and not any(p in bad for p in causal.predecessors(n))]
    ranked: dict[str, float] = {}
    for r in roots:
        if r == issue.target:
            ranked[r] = bad[r]
            continue
        for path in nx.all_simple_paths(causal, r, issue.target):
            if all(n in bad for n in path):
                ranked[r] = max(ranked.get(r, -np.inf), sum(bad[n] for n in path))
    return sorted(ranked, key=lambda n: -ranked[n])


def _stats_frame(df: pd.DataFrame, shift: float, metrics: tuple[str, ...] | None) -> pl.DataFrame:
    long = df.stack(level=[0, 1, 2], future_stack=True).rename("value").reset_index()
    long.columns = ["ts", "node", "metric", "statistic", "value"]
    if metrics is not None:
        long = long[long["metric"].isin(metrics)]
    long = long.dropna(subset=["value"])
    return pl.DataFrame(
        {
            "ts": pd.to_datetime(long["ts"] + shift, unit="s", utc=True),
            "node": long["node"].astype(str),
            "stat": (long["metric"] + "_" + long["statistic"]).astype(str),
            "value": long["value"].astype(float),
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def case_of(scen: Scenario, issue: Issue, *, metrics: tuple[str, ...] | None = None) -> Case:
    """The issue as a `Case`: normal series shifted by whole days to end before the issue,
    onset at the trigger point, mode ``call_graph``. ``metrics``: the metric kinds given to
    the kernel (None: all of latency, availability and requests)."""
    first, last = float(issue.metrics.index.min()), float(scen.normal.index.max())
    shift = np.floor((first - last) / DAY) * DAY
    if last + shift >= first:
        shift -= DAY
    stats = pl.concat(
        [_stats_frame(scen.normal, shift, metrics), _stats_frame(issue.metrics, 0.0, metrics)]
    ).sort("ts")
    row = trigger_row(mad_scores(scen, issue), issue.target)
    onset = datetime.fromtimestamp(float(issue.metrics.index[row]), tz=timezone.utc)
    return Case(
        name=issue.name,
        graph=scen.graph,
        stats=stats,
        targets=[issue.target],
        onset=onset,
        roots={issue.root},
        mode="call_graph",
    )
