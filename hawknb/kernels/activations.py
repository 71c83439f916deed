"""Activation tracing on an exported snapshot, and the walk from a bad node to its causes.

When a snapshot is published, HawkEye runs it on recent feature data, records per-operator
tensor statistics, and when NaN/inf or extreme values appear walks the model graph upstream
(to the input features that drive the bad units) and downstream (to how much of the output is
affected). This module does that for any `torch.export` program: a node-by-node
``torch.fx.Interpreter`` over ``ep.graph_module`` with the lifted parameters bound, keeping
only summary statistics per node (never the full activations), so a 1,000-op graph on a
10k-row batch costs a small multiple of a plain forward pass.
"""

from __future__ import annotations

import math
import operator
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.fx

from ..workspace.errors import HawknbError, WorkspaceError
from .graph import graph_structure, node_layer, program_graph, target_name
from .tensor_stats import TensorStats, tensor_stats
from .trace_run import Recorder, instrumented

__all__ = [
    "ActivationTrace",
    "FeatureDriver",
    "GraphFault",
    "NodeTrace",
    "SnapshotRunError",
    "TensorStats",
    "find_first_anomaly",
    "graph_structure",
    "trace_activations",
]

#: |x| at or above this counts as an extreme value (float32 overflows soon after ~1e38, but
#: activations of a healthy ranking model rarely exceed 1e3)
DEFAULT_EXTREME = 1e6
#: at most this many rows in the counterfactual batch of the upstream walk
_CF_MAX_ROWS = 50_000


class SnapshotRunError(HawknbError):
    """The exported program failed while running; names the node that raised."""

    def __init__(self, node: str, target: str, cause: BaseException) -> None:
        self.node = node
        self.target = target
        first = str(cause).splitlines()[0] if str(cause) else ""
        super().__init__(
            f"snapshot program failed at node '{node}' ({target}): {type(cause).__name__}: "
            f"{first[:300]}"
        )


@dataclass(frozen=True)
class NodeTrace:
    name: str
    op: str
    target: str
    #: module path owning the parameter the node uses (or its innermost module), e.g. ``net.2``
    layer: str | None
    module_stack: tuple[str, ...]
    inputs: tuple[str, ...]
    shape: tuple[int, ...] | None
    dtype: str | None
    stats: TensorStats | None
    #: "input", "parameter", "op" or "output"
    kind: str = "op"


@dataclass(frozen=True, eq=False)
class ActivationTrace:
    """Per-node statistics of one forward pass, in topological order."""

    nodes: tuple[NodeTrace, ...]
    edges: tuple[tuple[str, str], ...]
    #: names of the nodes whose values the program returns
    outputs: tuple[str, ...]
    input_node: str
    feature_names: tuple[str, ...]
    n_rows: int
    extreme: float
    #: the float32 batch that was run (kept for the upstream walk; not copied)
    inputs: np.ndarray = field(repr=False)
    #: per-row max |x| (inf where the row has NaN/inf) for the first anomalous node and
    #: anomalous outputs (find_first_anomaly recomputes it for another node when it needs to)
    row_max_abs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: per-unit (last dim) count of bad values, for the same nodes
    unit_bad: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    program: Any = field(default=None, repr=False)

    def node(self, name: str) -> NodeTrace:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in the trace")

    def frame(self) -> pl.DataFrame:
        """One row per node with its statistics, for display."""
        rows = []
        for n in self.nodes:
            s = n.stats
            rows.append(
                {
                    "node": n.name,
                    "kind": n.kind,
                    "op": n.op,
                    "target": n.target,
                    "layer": n.layer,
                    "shape": "x".join(map(str, n.shape)) if n.shape is not None else None,
                    "numel": s.numel if s else None,
                    "nan_count": s.nan_count if s else None,
                    "inf_count": s.inf_count if s else None,
                    "min": s.min if s else None,
                    "max": s.max if s else None,
                    "mean": s.mean if s else None,
                    "std": s.std if s else None,
                    "max_abs": s.max_abs if s else None,
                }
            )
        schema = {
            "node": pl.String,
            "kind": pl.String,
            "op": pl.String,
            "target": pl.String,
            "layer": pl.String,
            "shape": pl.String,
            "numel": pl.Int64,
            "nan_count": pl.Int64,
            "inf_count": pl.Int64,
            "min": pl.Float64,
            "max": pl.Float64,
            "mean": pl.Float64,
            "std": pl.Float64,
            "max_abs": pl.Float64,
        }
        return pl.DataFrame(rows, schema=schema)


@dataclass(frozen=True)
class FeatureDriver:
    """An input feature ranked by how much it drives the bad units of the faulty node."""

    feature: str
    index: int
    #: combined evidence in [0, 1]
    score: float
    #: 1 - share of good rows whose value falls in the bad rows' range (or NaN-rate gap)
    separation: float
    #: share of bad rows made good by resetting this feature to the good rows' median
    #: (NaN when there are no good rows to take a reference value from)
    counterfactual_fix: float
    #: the feature's range among the bad rows (1st..99th percentile)
    bad_range: tuple[float, float]


@dataclass(frozen=True)
class GraphFault:
    """The first node (topological order) whose output holds NaN/inf or extreme values."""

    node: str
    op: str
    target: str
    layer: str | None
    #: "nan", "inf" or "extreme"
    kind: str
    stats: TensorStats
    bad_rows: int
    bad_row_fraction: float
    bad_units: tuple[int, ...]
    driving_features: tuple[FeatureDriver, ...]
    #: state_dict keys of non-finite/extreme parameters the node consumes
    bad_parameters: tuple[str, ...]
    #: node names from the input to the fault (a shortest data path), and from it to the output
    upstream_path: tuple[str, ...]
    downstream_path: tuple[str, ...]
    #: share of output values that are NaN/inf, and that are extreme
    output_nonfinite_fraction: float
    output_extreme_fraction: float
    explanation: str


# -- input handling -----------------------------------------------------------------------------
def _as_batch(inputs: Any, feature_names: Sequence[str] | None, expected: int | None) -> np.ndarray:
    if isinstance(inputs, (pl.DataFrame, pl.LazyFrame)) or type(inputs).__name__ == "DataFrame":
        from ..engine import as_lazy, collect

        df = collect(as_lazy(inputs))
        if feature_names is None:
            raise WorkspaceError(
                "inputs",
                "is a table but no feature_names were given",
                fix="pass feature_names (the model's features.json) to pick the input columns",
            )
        missing = [f for f in feature_names if f not in df.columns]
        if missing:
            raise WorkspaceError(
                "inputs",
                "lacks feature columns",
                expected=f"columns {list(feature_names)[:10]}",
                found=f"missing {missing[:10]}",
                fix="select the serving rows of this model, which carry its features",
            )
        arr = df.select(pl.col(list(feature_names)).cast(pl.Float32)).to_numpy()
    elif isinstance(inputs, torch.Tensor):
        arr = inputs.detach().cpu().numpy()
    else:
        arr = np.asarray(inputs)
    if arr.dtype == object:
        raise WorkspaceError("inputs", "is not numeric", found=str(arr.dtype))
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 1 and expected is not None and arr.shape[0] == expected:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise WorkspaceError(
            "inputs",
            "has the wrong shape",
            expected="a 2-D float32 batch [rows, features]",
            found=f"shape {tuple(arr.shape)}",
        )
    if arr.shape[0] == 0:
        raise WorkspaceError(
            "inputs", "is an empty batch", expected="at least one row", fix="pass some rows"
        )
    if expected is not None and arr.shape[1] != expected:
        raise WorkspaceError(
            "inputs",
            "has the wrong number of feature columns",
            expected=f"{expected} features (the program's input width)",
            found=f"{arr.shape[1]}",
            fix="pass the model's features in features.json order",
        )
    if feature_names is not None and len(feature_names) != arr.shape[1]:
        raise WorkspaceError(
            "feature_names",
            "does not match the inputs",
            expected=f"{arr.shape[1]} names",
            found=f"{len(feature_names)}",
        )
    return arr


def _input_spec(pg: Any) -> tuple[str, int | None, int | None]:
    """The user input placeholder, its static width and its static batch (None if dynamic)."""
    if len(pg.user_inputs) != 1:
        raise WorkspaceError(
            "snapshot program",
            "takes an unsupported number of inputs",
            expected="one float32 tensor [batch, n_features]",
            found=f"{len(pg.user_inputs)} inputs {list(pg.user_inputs)}",
            fix="export the model with a single [batch, n_features] input",
        )
    name = pg.user_inputs[0]
    node = next(n for n in pg.module.graph.nodes if n.name == name)
    val = node.meta.get("val")
    width = batch = None
    if isinstance(val, torch.Tensor) and val.dim() == 2:
        w, b = val.shape[1], val.shape[0]
        width = int(w) if isinstance(w, int) else None
        batch = int(b) if isinstance(b, int) else None
    return name, width, batch


# -- statistics ---------------------------------------------------------------------------------
def _stats(x: torch.Tensor, bins: int) -> TensorStats:
    """Summary statistics of one node's value (see :mod:`hawknb.kernels.tensor_stats`)."""
    return tensor_stats(x, bins)


class _Namer(torch.fx.Interpreter):
    """Replays the graph node by node to name the node that raises (failing snapshots only)."""

    def run_node(self, n: torch.fx.Node) -> Any:
        try:
            return super().run_node(n)
        except Exception as exc:
            raise SnapshotRunError(n.name, target_name(n), exc) from exc


def trace_activations(
    program: Any,
    inputs: Any,
    *,
    feature_names: Sequence[str] | None = None,
    histogram_bins: int = 0,
    extreme: float = DEFAULT_EXTREME,
) -> ActivationTrace:
    """Run ``program`` (an ExportedProgram) on a float32 batch, recording per-node statistics.

    ``inputs`` is a [rows, features] array/tensor, or a polars/pandas frame from which
    ``feature_names`` are taken in order. Nodes whose values hold NaN/inf or ``|x| >= extreme``
    also keep a per-row max |x| and per-unit bad counts, which :func:`find_first_anomaly` uses
    to find the rows and features behind the fault. A node that raises becomes a
    :class:`SnapshotRunError` naming it.
    """
    if getattr(program, "program_format", None) == "onnx":  # intermediate outputs instead
        from .activations_onnx import trace_onnx_activations

        return trace_onnx_activations(
            program,
            inputs,
            feature_names=feature_names,
            histogram_bins=histogram_bins,
            extreme=extreme,
        )
    pg, (in_name, width, batch) = _bound_graph(program)
    if histogram_bins < 0:
        raise ValueError(f"histogram_bins must be >= 0, got {histogram_bins}")
    arr = _as_batch(inputs, feature_names, width)
    if batch is not None and batch != arr.shape[0]:
        raise WorkspaceError(
            "snapshot program",
            "was exported with a fixed batch size",
            expected=f"a batch of exactly {batch} rows, or a program exported with a dynamic batch",
            found=f"{arr.shape[0]} rows",
            fix="re-export with dynamic_shapes={'x': {0: torch.export.Dim('batch')}}",
        )
    names = tuple(feature_names) if feature_names is not None else _default_names(arr.shape[1])
    x = torch.from_numpy(arr)
    static, edges, outputs, last = _layout(pg)
    tracer = Recorder(
        histogram_bins, arr.shape[0], extreme, frozenset(outputs), frozenset(pg.bound)
    )
    args = [x if name == in_name else pg.bound[name] for name in pg.placeholders]
    with torch.no_grad():
        try:
            instrumented(pg.module)(*args, tracer)
            tracer.finish()
        except Exception:
            _Namer(pg.module, garbage_collect_values=True).run(*args)  # raises, naming the node
            raise  # the replay ran: keep the first error

    return ActivationTrace(
        nodes=_node_traces(static, tracer, last),
        edges=tuple(edges),
        outputs=outputs,
        input_node=in_name,
        feature_names=names,
        n_rows=arr.shape[0],
        extreme=extreme,
        inputs=arr,
        row_max_abs=tracer.row_max_abs,
        unit_bad=tracer.unit_bad,
        program=program,
    )


def _node_trace(
    info: dict[str, Any], shape: tuple[int, ...] | None, dtype: str | None, stats: Any
) -> NodeTrace:
    """A NodeTrace built as pickle restores one (``object.__new__``, then its ``__dict__``): a
    frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, ~3.5 us a
    node, which on a small model is a tenth of the forward pass."""
    node = object.__new__(NodeTrace)
    node.__dict__.update(info, shape=shape, dtype=dtype, stats=stats)
    return node


def _node_traces(
    static: tuple[dict[str, Any], ...], tracer: Recorder, last: list[NodeTrace | None]
) -> tuple[NodeTrace, ...]:
    """The trace's records in graph order. A node whose statistics are the very object of the
    previous trace of this graph (a parameter's statistics, kept while it is unchanged) with
    the same shape and dtype keeps that trace's record, which is immutable; ``last`` is
    replaced by this trace's records (a record read from a concurrent trace is reused only
    where it equals the one this trace would build)."""
    shapes, dtypes, stats = tracer.shapes, tracer.dtypes, tracer.stats
    out = []
    for info, prev in zip(static, last, strict=True):
        name = info["name"]
        s, shape, dtype = stats.get(name), shapes.get(name), _dtype_name(dtypes.get(name))
        reuse = (
            prev is not None
            and s is not None
            and prev.stats is s
            and prev.shape == shape
            and prev.dtype == dtype
        )
        out.append(prev if reuse else _node_trace(info, _shape(shape), dtype, s))
    last[:] = out
    return tuple(out)  # type: ignore[arg-type]


def _shape(shape: torch.Size | None) -> tuple[int, ...] | None:
    return None if shape is None else tuple(shape)


_NAMES: dict[int, tuple[str, ...]] = {}


def _default_names(width: int) -> tuple[str, ...]:
    """``x0 .. x{width-1}``, the feature names of a batch given without names (cached)."""
    names = _NAMES.get(width)
    if names is None:
        names = _NAMES[width] = tuple(f"x{i}" for i in range(width))
    return names


_BOUND: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], Any, Any]] = (
    weakref.WeakKeyDictionary()
)


def _bound_graph(program: Any) -> tuple[Any, tuple[str, int | None, int | None]]:
    """``program_graph(program)`` and its input spec, reused while the program holds the same
    graph, state and constant objects (rebuilding them costs ~15 us a call, 5% of a small
    model's forward pass); replacing a tensor in ``state_dict`` builds them again."""
    state = getattr(program, "state_dict", None)
    consts = getattr(program, "constants", None) or {}
    if not isinstance(state, dict):
        pg = program_graph(program)
        return pg, _input_spec(pg)
    held = (getattr(program, "graph_module", None), *state.values(), *consts.values())
    hit = _BOUND.get(program)
    if hit is not None and len(hit[0]) == len(held) and all(map(operator.is_, hit[0], held)):
        return hit[1], hit[2]
    pg = program_graph(program)
    spec = _input_spec(pg)
    _BOUND[program] = (held, pg, spec)
    return pg, spec


_DTYPE_NAMES: dict[torch.dtype | None, str | None] = {None: None}


def _dtype_name(dtype: torch.dtype | None) -> str | None:
    name = _DTYPE_NAMES.get(dtype, "")
    if name == "":
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


_Layout = tuple[
    tuple[dict[str, Any], ...],
    tuple[tuple[str, str], ...],
    tuple[str, ...],
    list[NodeTrace | None],
]
_LAYOUTS: weakref.WeakKeyDictionary[torch.fx.GraphModule, tuple[Any, _Layout]] = (
    weakref.WeakKeyDictionary()
)


def _layout(pg: Any) -> _Layout:
    """The per-node fields that do not depend on the inputs (name, target, layer, module
    stack, inputs, kind), the edges, the outputs and the previous trace's records (see
    :func:`_node_traces`); built once per graph (re-walking ``nn_module_stack`` metadata every
    call costs more than a small model's forward pass)."""
    key = (tuple(sorted(pg.bound)), tuple(sorted(pg.param_of.items())))
    hit = _LAYOUTS.get(pg.module)
    if hit is not None and hit[0] == key:
        return hit[1]
    static: list[dict[str, Any]] = []
    edges: list[tuple[str, str]] = []
    outputs: tuple[str, ...] = ()
    for n in pg.module.graph.nodes:
        if n.op == "output":
            outputs = tuple(a.name for a in n.all_input_nodes)
            continue
        if n.op == "placeholder":
            kind = "parameter" if n.name in pg.bound else "input"
        else:
            kind = "op"
        static.append(
            {
                "name": n.name,
                "op": n.op,
                "target": target_name(n),
                "layer": node_layer(n, pg.param_of),
                "module_stack": tuple(p for p in _stack(n) if p),
                "inputs": tuple(a.name for a in n.all_input_nodes),
                "kind": kind,
            }
        )
        edges.extend((a.name, n.name) for a in n.all_input_nodes)
    layout = (tuple(static), tuple(edges), outputs, [None] * len(static))
    _LAYOUTS[pg.module] = (key, layout)
    return layout


def _stack(n: torch.fx.Node) -> tuple[str, ...]:
    from .graph import module_stack

    return module_stack(n)


# -- the walk -----------------------------------------------------------------------------------
class _StopAt(Exception):
    def __init__(self, value: torch.Tensor) -> None:
        self.value = value


class _RunUntil(torch.fx.Interpreter):
    def __init__(self, gm: torch.fx.GraphModule, stop: str) -> None:
        super().__init__(gm, garbage_collect_values=True)
        self.stop = stop

    def run_node(self, n: torch.fx.Node) -> Any:
        out = super().run_node(n)
        if n.name == self.stop:
            raise _StopAt(out)
        return out


def _value_at(program: Any, x: np.ndarray, node: str) -> torch.Tensor:
    pg = program_graph(program)
    in_name = pg.user_inputs[0]
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    args = [xt if name == in_name else pg.bound[name] for name in pg.placeholders]
    try:
        with torch.no_grad():
            _RunUntil(pg.module, node).run(*args)
    except _StopAt as stop:
        return stop.value
    raise KeyError(node)


def _row_bad(value: torch.Tensor, n_rows: int, extreme: float) -> np.ndarray:
    """Rows holding NaN/inf or ``|x| >= extreme``: ``not |x| < extreme`` is true for all three,
    one numpy comparison (torch's bool-producing comparisons are ~8x slower on CPU)."""
    a = np.abs(value.detach().to(torch.float32).reshape(n_rows, -1).cpu().numpy())
    with np.errstate(invalid="ignore"):
        return ~(a < extreme).all(axis=1)


def _path(edges: Sequence[tuple[str, str]], src: str, dst: str) -> tuple[str, ...]:
    """A shortest directed path src -> dst over the trace edges (empty if none)."""
    from collections import deque

    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    prev: dict[str, str | None] = {src: None}
    q = deque([src])
    while q:
        u = q.popleft()
        if u == dst:
            break
        for v in succ.get(u, ()):
            if v not in prev:
                prev[v] = u
                q.append(v)
    if dst not in prev:
        return ()
    out = [dst]
    while prev[out[-1]] is not None:
        out.append(prev[out[-1]])  # type: ignore[arg-type]
    return tuple(reversed(out))


def _drivers(
    trace: ActivationTrace, node: str, bad: np.ndarray, extreme: float
) -> tuple[FeatureDriver, ...]:
    x = trace.inputs
    good = ~bad
    n_feat = x.shape[1]
    xb, xg = x[bad], x[good]
    sep = np.zeros(n_feat)
    ranges: list[tuple[float, float]] = []
    for j in range(n_feat):
        colb, colg = xb[:, j], xg[:, j]
        nan_b = float(np.mean(~np.isfinite(colb))) if colb.size else 0.0
        nan_g = float(np.mean(~np.isfinite(colg))) if colg.size else 0.0
        fb = colb[np.isfinite(colb)]
        if fb.size:
            q = (0.01, 0.99) if fb.size >= 100 else (0.0, 1.0)
            lo, hi = (float(v) for v in np.quantile(fb, q))
        else:
            lo = hi = math.nan
        ranges.append((lo, hi))
        if colg.size and fb.size:
            fg = colg[np.isfinite(colg)]
            inside = float(np.mean((fg >= lo) & (fg <= hi))) if fg.size else 1.0
            range_sep = (1.0 - inside) * (1.0 - nan_b)
        else:
            range_sep = 0.0
        sep[j] = max(range_sep, nan_b - nan_g)
    cf = np.full(n_feat, math.nan)
    if good.any() and trace.program is not None:
        m = int(max(8, min(256, _CF_MAX_ROWS // max(n_feat, 1))))
        rng = np.random.default_rng(0)
        idx = np.flatnonzero(bad)
        if idx.size > m:
            idx = np.sort(rng.choice(idx, size=m, replace=False))
        sample = x[idx]
        ref = np.nanmedian(np.where(np.isfinite(xg), xg, np.nan), axis=0)
        ref = np.where(np.isfinite(ref), ref, 0.0).astype(np.float32)
        k = sample.shape[0]
        stacked = np.repeat(sample[None, :, :], n_feat, axis=0)  # [feat, k, n_feat]
        stacked[np.arange(n_feat), :, np.arange(n_feat)] = ref[:, None]
        value = _value_at(trace.program, stacked.reshape(n_feat * k, n_feat), node)
        still_bad = _row_bad(value, n_feat * k, extreme).reshape(n_feat, k)
        cf = 1.0 - still_bad.mean(axis=1)
    score = sep if np.all(np.isnan(cf)) else 0.5 * (sep + np.nan_to_num(cf))
    order = np.argsort(-score, kind="stable")
    return tuple(
        FeatureDriver(
            feature=trace.feature_names[j],
            index=int(j),
            score=float(score[j]),
            separation=float(sep[j]),
            counterfactual_fix=float(cf[j]),
            bad_range=ranges[j],
        )
        for j in order
    )


def _param_drivers(
    trace: ActivationTrace, fault: NodeTrace, extreme: float
) -> tuple[FeatureDriver, ...]:
    """All rows are bad: if the faulty node reads the input directly through a weight, the
    input columns whose weights are bad drive it (nothing in the data separates the rows)."""
    if trace.input_node not in fault.inputs or trace.program is None:
        return ()
    pg = program_graph(trace.program)
    n_feat = trace.inputs.shape[1]
    for a in fault.inputs:
        w = pg.bound.get(a)
        if isinstance(w, torch.Tensor) and w.dim() == 2 and w.shape[1] == n_feat:
            badw = (~torch.isfinite(w) | (w.abs() >= extreme)).sum(dim=0).numpy()
            mag = w.abs().nan_to_num(nan=math.inf).amax(dim=0).numpy()
            if badw.sum() == 0:
                return ()
            score = badw / badw.max()
            order = np.lexsort((-mag, -score))
            return tuple(
                FeatureDriver(
                    trace.feature_names[j],
                    int(j),
                    float(score[j]),
                    math.nan,
                    math.nan,
                    (math.nan, math.nan),
                )
                for j in order
                if badw[j] > 0
            )
    return ()


def find_first_anomaly(
    trace: ActivationTrace, *, extreme: float | None = None
) -> GraphFault | None:
    """The first node in topological order with NaN/inf or ``|x| >= extreme`` values, with its
    layer, the input features that drive its bad units and the share of outputs affected.

    Parameter placeholders are not candidates (a bad weight shows at the op that uses it, which
    lists it under ``bad_parameters``); the user input is, so NaN in the features is reported
    at the input with the NaN columns as drivers. ``extreme`` defaults to the trace's.
    """
    if not isinstance(trace, ActivationTrace):
        raise TypeError(f"expected an ActivationTrace, got {type(trace).__name__}")
    extreme = trace.extreme if extreme is None else float(extreme)
    if not extreme > 0:
        raise ValueError(f"extreme must be > 0, got {extreme}")
    fault = _first_bad_node(trace, extreme)
    if fault is None:
        return None
    s = fault.stats
    assert s is not None
    kind = "nan" if s.nan_count else ("inf" if s.inf_count else "extreme")
    bad = _bad_rows(trace, fault, extreme)
    n_bad = int(bad.sum())
    unit = trace.unit_bad.get(fault.name)
    bad_units = tuple(int(i) for i in np.flatnonzero(unit)) if unit is not None else ()
    bad_params = _bad_parameters(trace, fault, extreme)
    if fault.kind == "input":
        drivers = _input_drivers(trace, extreme)
    elif 0 < n_bad < trace.n_rows:
        drivers = _drivers(trace, fault.name, bad, extreme)
    else:
        drivers = _param_drivers(trace, fault, extreme)
    nf_frac, ex_frac = _output_damage(trace, extreme)
    return GraphFault(
        node=fault.name,
        op=fault.op,
        target=fault.target,
        layer=fault.layer,
        kind=kind,
        stats=s,
        bad_rows=n_bad,
        bad_row_fraction=n_bad / trace.n_rows if trace.n_rows else math.nan,
        bad_units=bad_units,
        driving_features=drivers,
        bad_parameters=tuple(bad_params),
        upstream_path=_path(trace.edges, trace.input_node, fault.name),
        downstream_path=_path(trace.edges, fault.name, trace.outputs[0]) if trace.outputs else (),
        output_nonfinite_fraction=nf_frac,
        output_extreme_fraction=ex_frac,
        explanation=_explain(trace, fault, kind, n_bad, bad_params, drivers, nf_frac),
    )


def _first_bad_node(trace: ActivationTrace, extreme: float) -> NodeTrace | None:
    """The first non-parameter node in topological order with NaN/inf or extreme values."""
    for n in trace.nodes:
        if n.kind == "parameter" or n.stats is None:
            continue
        if n.stats.nonfinite > 0 or n.stats.max_abs >= extreme:
            return n
    return None


def _bad_rows(trace: ActivationTrace, fault: NodeTrace, extreme: float) -> np.ndarray:
    """Per input row: whether the fault node is bad on it (its own per-row maxima, else a
    replay of the node, else no row known)."""
    if fault.kind == "input":
        return (~np.isfinite(trace.inputs) | (np.abs(trace.inputs) >= extreme)).any(axis=1)
    if fault.name in trace.row_max_abs:
        return trace.row_max_abs[fault.name] >= extreme
    if fault.shape and fault.shape[0] == trace.n_rows and trace.program is not None:
        return _row_bad(_value_at(trace.program, trace.inputs, fault.name), trace.n_rows, extreme)
    return np.zeros(trace.n_rows, dtype=bool)


def _bad_parameters(trace: ActivationTrace, fault: NodeTrace, extreme: float) -> list[str]:
    """The fault node's parameters that hold non-finite or extreme values, by their names in
    the model (``layer.weight``) where the program says."""
    bad_params: list[str] = []
    params = {n.name: n for n in trace.nodes if n.kind == "parameter"}
    pg = program_graph(trace.program) if trace.program is not None else None
    for a in fault.inputs:
        p = params.get(a)
        if (
            p is not None
            and p.stats is not None
            and (p.stats.nonfinite > 0 or p.stats.max_abs >= extreme)
        ):
            bad_params.append(pg.param_of.get(a, a) if pg else a)
    return bad_params


def _input_drivers(trace: ActivationTrace, extreme: float) -> tuple[FeatureDriver, ...]:
    """Bad values in the features themselves: the columns holding them, most first."""
    x = trace.inputs
    counts = (~np.isfinite(x) | (np.abs(x) >= extreme)).sum(axis=0)
    top = counts.max() if counts.size else 0
    return tuple(
        FeatureDriver(
            trace.feature_names[j],
            int(j),
            float(counts[j] / top),
            1.0,
            math.nan,
            (math.nan, math.nan),
        )
        for j in np.argsort(-counts, kind="stable")
        if counts[j] > 0
    )


def _output_damage(trace: ActivationTrace, extreme: float) -> tuple[float, float]:
    """(share of output values that are NaN/inf, share that are extreme); NaN without stats."""
    out_nonfinite = out_extreme = 0.0
    out_numel = 0
    for o in trace.outputs:
        os_ = next((n.stats for n in trace.nodes if n.name == o), None)
        if os_ is None or os_.numel == 0:
            continue
        out_numel += os_.numel
        out_nonfinite += os_.nonfinite
        if os_.max_abs >= extreme:
            # how many output values are extreme is only known row-wise
            rm = trace.row_max_abs.get(o)
            out_extreme += float(np.sum(np.isfinite(rm) & (rm >= extreme))) if rm is not None else 0
    nf_frac = out_nonfinite / out_numel if out_numel else math.nan
    ex_frac = out_extreme / out_numel if out_numel else math.nan
    return nf_frac, ex_frac


def _explain(
    trace: ActivationTrace,
    fault: NodeTrace,
    kind: str,
    n_bad: int,
    bad_params: list[str],
    drivers: tuple[FeatureDriver, ...],
    nf_frac: float,
) -> str:
    where = f"layer {fault.layer}" if fault.layer else "the model input"
    parts = [
        f"first {kind} values at node '{fault.name}' ({fault.target}) in {where}, "
        f"on {n_bad} of {trace.n_rows} rows"
    ]
    if bad_params:
        parts.append(f"its parameters {bad_params} hold non-finite or extreme values")
    strong = [d for d in drivers if d.score >= 0.5]
    if strong:
        parts.append("driven by " + ", ".join(f"{d.feature} ({d.score:.2f})" for d in strong[:3]))
    parts.append(
        f"{nf_frac:.1%} of outputs are NaN/inf" if not math.isnan(nf_frac) else "no output stats"
    )
    return "; ".join(parts)
