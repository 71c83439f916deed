"""Activation tracing on an ONNX snapshot, from intermediate outputs.

An ONNX graph cannot be replayed node by node the way a torch.export program is, but
onnxruntime can return any intermediate tensor as an extra output. So the snapshot is run once
with every float intermediate exposed (see ``OnnxProgram.run_all``), and each node's value
gets the same summary statistics as :func:`hawknb.kernels.activations.trace_activations`
records. The result is an ordinary :class:`ActivationTrace` (node ids are the tensor names a
node writes; a node's layer is the module path of the weight it reads, as in a state_dict), so
:func:`find_first_anomaly`, triage and the model-graph view work on it unchanged. What it
cannot do is the counterfactual walk (re-running part of the graph on edited rows): driving
features come from comparing the bad rows with the good ones instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .activations import (
    DEFAULT_EXTREME,
    ActivationTrace,
    NodeTrace,
    SnapshotRunError,
    _as_batch,
    _stats,
)
from .graph import NotAvailableForFormat, layer_of_parameter

__all__ = ["trace_onnx_activations"]


def _bad_rows(v: np.ndarray, n_rows: int, extreme: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row max |x| (inf for NaN/inf) and per-unit bad counts of a [rows, ...] value."""
    t = torch.from_numpy(np.ascontiguousarray(v)).reshape(n_rows, -1).to(torch.float32)
    row = t.abs().nan_to_num(nan=math.inf).amax(dim=1).numpy().copy()
    units = (~torch.isfinite(t) | (t.abs() >= extreme)).sum(dim=0).numpy().copy()
    return row, units


def _node(
    name: str, target: str, kind: str, value: np.ndarray | None, bins: int, **kw: Any
) -> NodeTrace:
    t = None if value is None else torch.from_numpy(np.ascontiguousarray(value))
    return NodeTrace(
        name=name,
        op="placeholder" if kind != "op" else "call_function",
        target=target,
        module_stack=(),
        shape=None if t is None else tuple(int(d) for d in t.shape),
        dtype=None if t is None else str(t.dtype).replace("torch.", ""),
        stats=None if t is None else _stats(t, bins),
        kind=kind,
        **kw,
    )


def trace_onnx_activations(
    program: Any,
    inputs: Any,
    *,
    feature_names: Sequence[str] | None = None,
    histogram_bins: int = 0,
    extreme: float = DEFAULT_EXTREME,
) -> ActivationTrace:
    """Run an ONNX snapshot (an ``OnnxProgram``) once with its intermediate values exposed and
    record per-node statistics; see the module docstring for what differs from torch."""
    if not hasattr(program, "run_all"):
        raise NotAvailableForFormat("activation tracing", getattr(program, "program_format", "?"))
    arr = _as_batch(inputs, feature_names, getattr(program, "n_features", None))
    n = arr.shape[0]
    graph = program.graph()
    try:
        values = program.run_all(arr)
    except Exception as exc:
        raise SnapshotRunError(graph.input_name, "onnxruntime", exc) from exc
    names = (
        tuple(feature_names)
        if feature_names is not None
        else tuple(f"x{i}" for i in range(arr.shape[1]))
    )
    producer = {graph.input_name: graph.input_name, **{k: k for k in graph.initializers}}
    nodes = [_node(graph.input_name, "input", "input", arr, histogram_bins, layer=None, inputs=())]
    used = {i for node in graph.nodes for i in node.inputs}
    for name, w in graph.initializers.items():
        if name in used:
            layer = layer_of_parameter(name) or None
            nodes.append(
                _node(name, "parameter", "parameter", w, histogram_bins, layer=layer, inputs=())
            )
    edges: list[tuple[str, str]] = []
    row_max_abs: dict[str, np.ndarray] = {}
    unit_bad: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if not node.outputs:
            continue
        nid = node.outputs[0]
        ins = tuple(dict.fromkeys(producer[i] for i in node.inputs if i in producer))
        weights = [i for i in node.inputs if i in graph.initializers]
        layer = (layer_of_parameter(weights[0]) if weights else "") or node.name or None
        value = values.get(nid)
        nt = _node(nid, node.op_type, "op", value, histogram_bins, layer=layer, inputs=ins)
        nodes.append(nt)
        edges.extend((i, nid) for i in ins)
        for o in node.outputs:
            producer[o] = nid
        s = nt.stats
        rowwise = value is not None and value.ndim >= 1 and value.shape[0] == n
        if rowwise and s is not None and (s.nonfinite > 0 or s.max_abs >= extreme):
            row_max_abs[nid], unit_bad[nid] = _bad_rows(value, n, extreme)
    outputs = tuple(producer[o] for o in graph.output_names if o in producer)
    return ActivationTrace(
        nodes=tuple(nodes),
        edges=tuple(edges),
        outputs=outputs,
        input_node=graph.input_name,
        feature_names=names,
        n_rows=n,
        extreme=extreme,
        inputs=arr,
        row_max_abs=row_max_abs,
        unit_bad=unit_bad,
        program=None,  # no counterfactual replay on ONNX: drivers come from bad vs good rows
    )
