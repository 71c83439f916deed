"""The case every generator produces and the frame helper they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import networkx as nx
import numpy as np
import polars as pl

START = datetime(2026, 3, 2, tzinfo=timezone.utc)


@dataclass
class Case:
    """One incident: the graph as its owner would draw it, the stats, what to explain, when,
    the true root(s), the graph mode to read it in, and alias groups (views of one node)."""

    name: str
    graph: nx.DiGraph
    stats: pl.DataFrame
    targets: list
    onset: datetime
    roots: set
    mode: str
    aliases: dict = field(default_factory=dict)  # node -> set of nodes that are the same thing


def frame(series: dict[tuple[object, str], np.ndarray], step: timedelta) -> pl.DataFrame:
    """(ts, node, stat, value) rows from {(node, stat): values} sampled every ``step``."""
    parts = []
    for (node, stat), values in series.items():
        n = values.size
        ts = pl.datetime_range(
            START, START + step * (n - 1), step, time_unit="us", time_zone="UTC", eager=True
        )
        parts.append(
            pl.DataFrame(
                {
                    "ts": ts,
                    "node": pl.Series([node] * n),
                    "stat": [stat] * n,
                    "value": values.astype(np.float64),
                }
            )
        )
    return pl.concat(parts)
