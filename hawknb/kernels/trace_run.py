"""One forward pass of an exported graph that records per-node statistics, without an interpreter.

``torch.fx.Interpreter`` dispatches every node through Python (argument lookup, environment
dicts, hooks): on a small model serving a few thousand rows that costs more than the ops. So
the graph is copied once per program with a call to ``sink.record(name, value, ...)`` after
every node, and the copy's generated Python code (straight-line calls, dead values freed as the
original's code frees them) runs the pass. A node that raises is then named by replaying the
graph node by node, which only a failing snapshot pays for.

What a node costs the recorder:

- a value of more than :data:`~hawknb.kernels.tensor_stats.SMALL` entries is summarized at
  once (four reductions while it is still in cache), except that a view-like op (squeeze,
  reshape, permute, clone, ...) reuses its input's statistics (same values, same multiset) and a
  ReLU of a finite tensor takes its extremes from its input's, clamped at 0;
- smaller values (parameters, per-row outputs, every layer of a small model) are kept and
  summarized together in one batched pass (:func:`~hawknb.kernels.tensor_stats.batch_stats`)
  at the end, or as soon as a big node turns out bad (the first bad node must be known in
  topological order), they hold more than ``_PENDING_MAX`` values or an in-place op is about
  to run (it may overwrite them);
- small parameters (the weights of a small model) are summarized once per program and reused
  while every one of them still holds the same values (checked with ``torch.equal`` against a
  kept copy, ~1 us a parameter, where summarizing them costs a few numpy calls each); a view-like
  op of a kept small value reuses its statistics as a big one does.
"""

from __future__ import annotations

import copy
import operator
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.fx

from .tensor_stats import (
    SMALL,
    Positive,
    TensorStats,
    batch_stats,
    relu_stats,
    row_unit_bad,
    stats_and_positive,
    tensor_stats,
)

__all__ = ["Recorder", "instrumented"]

_CACHE: weakref.WeakKeyDictionary[torch.fx.GraphModule, torch.fx.GraphModule] = (
    weakref.WeakKeyDictionary()
)
#: summarize the kept small values once they hold this many entries (bounds the memory kept)
_PENDING_MAX = 1 << 22
#: parameter statistics are cached for programs whose small parameters hold at most this many
#: values in all (a copy of them is kept to check that they did not change)
_PARAM_CACHE_MAX = 1 << 18
#: how many programs' parameter statistics are kept
_PARAM_CACHE_PROGRAMS = 8
_ParamKey = tuple[tuple[str, ...], int, tuple[tuple[int, torch.dtype, tuple[int, ...]], ...]]
_PARAM_STATS: dict[_ParamKey, tuple[list[torch.Tensor], list[TensorStats]]] = {}
#: aten ops whose output holds exactly their first input's values (a view, a copy or a
#: reordering of it), so its statistics are the input's
_SAME_VALUES = frozenset(
    {
        "alias",
        "clone",
        "contiguous",
        "detach",
        "flatten",
        "permute",
        "reshape",
        "squeeze",
        "t",
        "transpose",
        "unsqueeze",
        "view",
        "_unsafe_view",
    }
)


class Recorder:
    """Where the instrumented pass leaves its statistics (one per run); call :meth:`finish`
    after the pass."""

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
        self.dtypes: dict[str, torch.dtype] = {}
        self.row_max_abs: dict[str, np.ndarray] = {}
        self.unit_bad: dict[str, np.ndarray] = {}
        self._pending: list[tuple[str, torch.Tensor, bool, tuple[str, str] | None]] = []
        self._pending_size = 0
        self._params: list[tuple[str, torch.Tensor]] = []
        #: the positive parts' sums of big all-finite values, for a ReLU of them
        self._positive: dict[str, Positive] = {}

    def settle(self) -> None:
        """Summarize the kept small values now (the instrumented graph calls this before an
        in-place op, which may overwrite them, or the values a ReLU's sums are taken from)."""
        self._flush_params()
        self._flush()
        self._positive.clear()

    def record(self, name: str, value: Any, per_row: bool, hint: tuple[str, str] | None) -> None:
        """Statistics of one node's value; ``hint`` is ("same", input) for a view-like op and
        ("relu", input) for a ReLU."""
        if not isinstance(value, torch.Tensor):
            return
        self.shapes[name] = value.shape
        self.dtypes[name] = value.dtype
        n = value.numel()
        if n <= SMALL:
            if name in self.params:
                self._params.append((name, value))
                return
            self._pending.append((name, value, per_row, hint))
            self._pending_size += n
            if self._pending_size > _PENDING_MAX:
                self._flush()
            return
        s = self._derived(value, hint)
        if s is None:
            relu = hint is not None and hint[0] == "positive"  # a ReLU of it follows
            s, positive = stats_and_positive(value, self.bins, relu)
            if positive is not None:
                self._positive[name] = positive
        self.stats[name] = s
        if s.nonfinite or s.max_abs >= self.extreme:  # only a bad value needs more
            if self.first_bad is None:
                self._flush()  # a smaller node before this one may be the first bad one
            self._detail(name, value, s, per_row)

    def _derived(self, value: torch.Tensor, hint: tuple[str, str] | None) -> TensorStats | None:
        """Statistics that follow from the input's, or None."""
        if hint is None or hint[0] == "positive":
            return None
        src = self.stats.get(hint[1])
        if src is None or src.numel != value.numel() or self.dtypes[hint[1]] != value.dtype:
            return None
        if hint[0] == "same":
            return src
        if src.nonfinite == 0:  # relu of a finite tensor: extremes clamped at 0
            bounds = (max(src.min, 0.0), max(src.max, 0.0))
            positive = self._positive.get(hint[1])
            if positive is not None:  # and its sums from the input's pass
                return relu_stats(value, self.bins, bounds, positive)
            return tensor_stats(value, self.bins, bounds=bounds)
        return None

    def _detail(self, name: str, value: torch.Tensor, s: TensorStats, per_row: bool) -> None:
        """Per-row detail only where find_first_anomaly reads it: the first bad op and the
        outputs (every later node of a broken model is bad too, and detail costs ~6 passes)."""
        bad = s.nonfinite > 0 or s.max_abs >= self.extreme
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

    def _flush(self) -> None:
        pending, self._pending, self._pending_size = self._pending, [], 0
        if not pending:
            return
        kept = {name: value for name, value, _, _ in pending}
        # a view-like op of a kept value: summarized once, with its source
        same = [_same_source(p, kept) for p in pending]
        todo = [p[1] for p, src in zip(pending, same, strict=True) if src is None]
        summaries = iter(batch_stats(todo, self.bins))
        for (name, value, per_row, _), src in zip(pending, same, strict=True):
            s = next(summaries) if src is None else self.stats[src]
            self.stats[name] = s
            self._detail(name, value, s, per_row)

    def _flush_params(self) -> None:
        params, self._params = self._params, []
        if params:
            self.stats.update(
                zip([n for n, _ in params], _param_stats(params, self.bins), strict=True)
            )

    def finish(self) -> None:
        """Summarize the values still kept (call once the pass has run)."""
        self._flush_params()
        self._flush()


def _same_source(
    entry: tuple[str, torch.Tensor, bool, tuple[str, str] | None], kept: dict[str, torch.Tensor]
) -> str | None:
    """The kept value whose statistics a view-like node's value shares, or None. Kept values
    precede their users in the pending list, so the source is summarized first."""
    _, value, _, hint = entry
    if hint is None or hint[0] != "same":
        return None
    src = kept.get(hint[1])
    if src is None or src.numel() != value.numel() or src.dtype != value.dtype:
        return None
    return hint[1]


def _param_stats(params: list[tuple[str, torch.Tensor]], bins: int) -> list[TensorStats]:
    """Statistics of a program's small parameters, reused while each still equals the copy kept
    when they were computed (a NaN never equals itself: such parameters are summarized again)."""
    values = [v for _, v in params]
    # the tensors' ids keep two snapshots of one model (same names and shapes) apart; an id
    # reused by a new tensor is caught by the equality check like any changed value
    key = (
        tuple(n for n, _ in params),
        bins,
        tuple((id(v), v.dtype, tuple(v.shape)) for v in values),
    )
    hit = _PARAM_STATS.get(key)
    if hit is not None and all(map(torch.equal, hit[0], values)):
        return hit[1]
    stats = batch_stats(values, bins)
    if sum(v.numel() for v in values) <= _PARAM_CACHE_MAX:
        _PARAM_STATS.pop(key, None)
        while len(_PARAM_STATS) >= _PARAM_CACHE_PROGRAMS:
            _PARAM_STATS.pop(next(iter(_PARAM_STATS)))
        _PARAM_STATS[key] = ([v.detach().clone() for v in values], stats)
    return stats


def _hint(n: torch.fx.Node) -> tuple[str, str] | None:
    """("same", input) / ("relu", input) for ops whose statistics follow from their input's
    (:func:`_hints` adds ("positive", node) for the inputs of such ReLUs)."""
    if n.op != "call_function" or not n.args or not isinstance(n.args[0], torch.fx.Node):
        return None
    packet = getattr(n.target, "_overloadpacket", None)
    op = getattr(packet, "__name__", "")
    if op in _SAME_VALUES:
        return ("same", n.args[0].name)
    if op == "relu":
        return ("relu", n.args[0].name)
    return None


def _hints(nodes: list[torch.fx.Node]) -> dict[str, tuple[str, str] | None]:
    """Every node's :func:`_hint`, and ("positive", node) for a node without one that a ReLU
    with a hint reads (its recorder also bins the ReLU's histogram from its own sample)."""
    hints = {n.name: _hint(n) for n in nodes}
    fed = {h[1] for h in hints.values() if h is not None and h[0] == "relu"}
    for name in fed:
        if name in hints and hints[name] is None:
            hints[name] = ("positive", name)
    return hints


def _mutates(n: torch.fx.Node) -> bool:
    """Whether a node may write into one of its inputs (an in-place or out= aten op, or a
    call the graph cannot vouch for)."""
    if n.op == "call_function":
        if n.target is operator.getitem:
            return False
        schema = getattr(n.target, "_schema", None)
        return schema is None or bool(schema.is_mutable)
    return n.op in ("call_method", "call_module")


def _instrument(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of ``gm`` taking one more argument, the sink, and observing every node."""
    new = copy.deepcopy(gm)
    g = new.graph
    nodes = list(g.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    first_op = next(n for n in nodes if n.op != "placeholder")
    hints = _hints(nodes)
    with g.inserting_before(first_op):
        sink = g.placeholder("_hawknb_sink")
        for p in placeholders:  # placeholders stay first: observe them after the last one
            g.call_method("record", (sink, p.name, p, True, hints[p.name]))
    for n in nodes:
        if n.op in ("placeholder", "output"):
            continue
        if _mutates(n):  # it may overwrite a kept value
            with g.inserting_before(n):
                g.call_method("settle", (sink,))
        with g.inserting_after(n):
            g.call_method("record", (sink, n.name, n, n.op != "get_attr", hints[n.name]))
    new.recompile()
    return new


def instrumented(gm: torch.fx.GraphModule) -> Callable[..., Any]:
    """The observing copy of ``gm`` (built once per graph module): call it with the graph's
    arguments followed by a :class:`Recorder`, then call the recorder's ``finish``."""
    found = _CACHE.get(gm)
    if found is None:
        found = _CACHE[gm] = _instrument(gm)
    return found
