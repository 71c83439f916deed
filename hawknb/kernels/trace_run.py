"""One forward pass of an exported graph that records per-node statistics, without an interpreter.

``torch.fx.Interpreter`` dispatches every node through Python (argument lookup, environment
dicts, hooks): on a small model serving a few thousand rows that costs more than the ops. So
the graph is copied once per program with a call to ``_observe(sink, name, value)`` after every
node, and the copy's generated Python code (straight-line calls, dead values freed as the
original's code frees them) runs the pass. A node that raises is then named by replaying the
graph node by node, which only a failing snapshot pays for.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.fx

from .tensor_stats import TensorStats, row_unit_bad, tensor_stats

__all__ = ["Recorder", "instrumented"]

_CACHE: weakref.WeakKeyDictionary[torch.fx.GraphModule, torch.fx.GraphModule] = (
    weakref.WeakKeyDictionary()
)


class Recorder:
    """Where the instrumented pass leaves its statistics (one per run)."""

    def __init__(
        self,
        bins: int,
        n_rows: int,
        extreme: float,
        outputs: frozenset[str] = frozenset(),
        params: frozenset[str] = frozenset(),
    ) -> None:
        self.bins = bins
        self.outputs = outputs
        self.params = params
        self.first_bad: str | None = None
        self.n_rows = n_rows
        self.extreme = extreme
        self.stats: dict[str, TensorStats] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}
        self.row_max_abs: dict[str, np.ndarray] = {}
        self.unit_bad: dict[str, np.ndarray] = {}

    def record(self, name: str, value: Any, per_row: bool) -> None:
        if not isinstance(value, torch.Tensor):
            return
        s = tensor_stats(value, self.bins)
        self.stats[name] = s
        self.shapes[name] = tuple(int(d) for d in value.shape)
        self.dtypes[name] = str(value.dtype).replace("torch.", "")
        bad = s.nonfinite > 0 or s.max_abs >= self.extreme
        # per-row detail only where find_first_anomaly reads it: the first bad op and the
        # outputs (every later node of a broken model is bad too, and detail costs ~6 passes)
        if (
            not (bad and per_row)
            or name in self.params
            or (self.first_bad is not None and name not in self.outputs)
        ):
            return
        self.first_bad = self.first_bad or name
        if value.dim() >= 1 and value.shape[0] == self.n_rows:
            where = row_unit_bad(value, self.n_rows, self.extreme)
            self.row_max_abs[name] = where.row_max_abs
            self.unit_bad[name] = where.unit_bad


def _observe(sink: Recorder, name: str, value: Any, per_row: bool) -> None:
    sink.record(name, value, per_row)


def _instrument(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of ``gm`` taking one more argument, the sink, and observing every node."""
    new = copy.deepcopy(gm)
    g = new.graph
    nodes = list(g.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    first_op = next(n for n in nodes if n.op != "placeholder")
    with g.inserting_before(first_op):
        sink = g.placeholder("_hawknb_sink")
        for p in placeholders:  # placeholders stay first: observe them after the last one
            g.call_function(_observe, (sink, p.name, p, True))
    for n in nodes:
        if n.op in ("placeholder", "output"):
            continue
        with g.inserting_after(n):
            g.call_function(_observe, (sink, n.name, n, n.op != "get_attr"))
    new.recompile()
    return new


def instrumented(gm: torch.fx.GraphModule) -> Callable[..., Any]:
    """The observing copy of ``gm`` (built once per graph module): call it with the graph's
    arguments followed by a :class:`Recorder`."""
    found = _CACHE.get(gm)
    if found is None:
        found = _CACHE[gm] = _instrument(gm)
    return found
