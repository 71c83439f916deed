"""The exported model graph as hawknb sees it: which placeholder is which, who owns a node.

A `torch.export` program lifts parameters, buffers and constants into placeholders of
``ep.graph_module``; the graph signature says which placeholder is which. This module turns
that into plain facts (a node's *layer*, the user input, the parameter values to bind) so the
activation tracer and the graph view never re-derive them differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..workspace.errors import HawknbError

__all__ = [
    "NotAvailableForFormat",
    "ProgramGraph",
    "graph_structure",
    "layer_of_parameter",
    "program_graph",
]


def layer_of_parameter(key: str) -> str:
    """Module path owning a state_dict key: ``net.2`` for ``net.2.weight``; ``""`` for a
    top-level parameter (``scale``) so that it still groups as the root module."""
    return key.rsplit(".", 1)[0] if "." in key else ""


@dataclass(frozen=True)
class ProgramGraph:
    """What the interpreter needs to run ``ep.graph_module`` directly.

    ``bound`` maps lifted placeholder names to their tensors (parameters, buffers, constants);
    ``user_inputs`` are the remaining placeholders in call order; ``param_of`` maps a lifted
    placeholder to its state_dict key (``p_net_2_weight`` -> ``net.2.weight``).
    """

    module: torch.fx.GraphModule
    bound: Mapping[str, torch.Tensor]
    user_inputs: tuple[str, ...]
    param_of: Mapping[str, str]
    placeholders: tuple[str, ...]


class NotAvailableForFormat(HawknbError, TypeError):
    """A step that needs the ``torch.export`` graph (the node-by-node replay, weight tensors)
    was given a snapshot of another format that lacks it, e.g. an ONNX tree ensemble.

    Triage turns it into a *skipped* finding ("not available for this format"), never a failed
    one: the snapshot is fine, the step just cannot look inside it. ``format`` names the
    program's format (``program.program_format``).
    """

    def __init__(self, step: str, program_format: str) -> None:
        self.step = step
        self.format = program_format
        super().__init__(
            f"{step} is not available for {program_format} snapshots (it needs a torch.export "
            "program); predictions-only steps (ablation, validation, calibration) still run"
        )


def _is_exported_program(obj: Any) -> bool:
    return isinstance(obj, torch.export.ExportedProgram)


def program_graph(program: Any) -> ProgramGraph:
    """Resolve an ExportedProgram's lifted placeholders to tensors.

    Works on ``ep.graph_module`` (not ``ep.module()``) because that graph keeps one node per
    aten op with its ``nn_module_stack`` and needs no guard function; the price is binding the
    lifted parameters ourselves, which the graph signature makes exact.
    """
    if not _is_exported_program(program):
        fmt = getattr(program, "program_format", None)
        if isinstance(fmt, str):
            raise NotAvailableForFormat("replaying the torch graph node by node", fmt)
        raise TypeError(
            f"expected a torch.export.ExportedProgram, got {type(program).__name__}; "
            "load one with hawknb.workspace.Workspace.load_program or torch.export.load"
        )
    from torch.export.graph_signature import InputKind

    sig = program.graph_signature
    state = program.state_dict
    consts = getattr(program, "constants", {}) or {}
    bound: dict[str, torch.Tensor] = {}
    param_of: dict[str, str] = {}
    user: list[str] = []
    for spec in sig.input_specs:
        name = spec.arg.name
        if spec.kind == InputKind.USER_INPUT:
            user.append(name)
            continue
        target = spec.target
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            value = state[target] if target in state else consts.get(target)
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            value = consts.get(target)
        else:  # custom objects / tokens: hand over whatever the program holds
            value = consts.get(target)
        if value is None:
            raise KeyError(f"exported program has no value for lifted input {name!r} ({target})")
        bound[name] = value.detach() if isinstance(value, torch.Tensor) else value
        if target is not None:
            param_of[name] = target
    placeholders = tuple(n.name for n in program.graph_module.graph.nodes if n.op == "placeholder")
    return ProgramGraph(
        module=program.graph_module,
        bound=bound,
        user_inputs=tuple(user),
        param_of=param_of,
        placeholders=placeholders,
    )


def module_stack(node: torch.fx.Node) -> tuple[str, ...]:
    """The module paths enclosing a node, outermost first (``("", "net", "net.2")``)."""
    stack = node.meta.get("nn_module_stack") or {}
    out = []
    for value in stack.values():
        path = value[0] if isinstance(value, tuple) else value
        out.append(str(path))
    return tuple(out)


def node_layer(node: torch.fx.Node, param_of: Mapping[str, str]) -> str | None:
    """The layer a node belongs to: the module owning a parameter it consumes (the contract's
    definition), else the innermost non-root module of its ``nn_module_stack``."""
    if node.op == "placeholder":
        key = param_of.get(node.name)
        return layer_of_parameter(key) if key is not None else None
    for arg in node.all_input_nodes:
        key = param_of.get(arg.name)
        if key is not None:
            return layer_of_parameter(key)
    stack = [p for p in module_stack(node) if p]
    return stack[-1] if stack else None


def target_name(node: torch.fx.Node) -> str:
    t = node.target
    if isinstance(t, str):
        return t
    return str(getattr(t, "__name__", None) or t)


def graph_structure(
    program: Any, *, include_parameters: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Nodes and edges for drawing the model graph (ELK-style: ids, labels, module path).

    Parameter/buffer placeholders are folded into the op that uses them (listed under
    ``params``) unless ``include_parameters``: a 1,000-op graph stays readable and the drawing
    cost stays linear in the number of ops.
    """
    pg = program_graph(program)
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    keep: set[str] = set()
    for node in pg.module.graph.nodes:
        is_param = node.op == "placeholder" and node.name in pg.bound
        if is_param and not include_parameters:
            continue
        keep.add(node.name)
        if node.op == "placeholder":
            kind = "parameter" if is_param else "input"
        elif node.op == "output":
            kind = "output"
        else:
            kind = "op"
        params = [pg.param_of[a.name] for a in node.all_input_nodes if a.name in pg.param_of]
        val = node.meta.get("val")
        shape = [str(d) for d in val.shape] if isinstance(val, torch.Tensor) else None
        nodes.append(
            {
                "id": node.name,
                "label": node.name if kind != "op" else target_name(node).split(".")[0],
                "kind": kind,
                "op": node.op,
                "target": target_name(node),
                "layer": node_layer(node, pg.param_of),
                "params": params,
                "shape": shape,
            }
        )
    for node in pg.module.graph.nodes:
        if node.name not in keep:
            continue
        for arg in node.all_input_nodes:
            if arg.name in keep:
                edges.append({"source": arg.name, "target": node.name})
    return nodes, edges
