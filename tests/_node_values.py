"""Every node's value of an exported program on one batch (tests compare the trace's
statistics with those of the values themselves)."""

from __future__ import annotations

import torch
import torch.fx

from hawknb.kernels.graph import program_graph


def node_values(ep: torch.export.ExportedProgram, x: torch.Tensor) -> dict[str, object]:
    """{node name: its value} of ``ep`` run node by node on ``x``."""
    pg = program_graph(ep)
    values: dict[str, object] = {}

    class Keep(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> object:
            out = super().run_node(n)
            values[n.name] = out
            return out

    with torch.no_grad():
        Keep(pg.module).run(
            *[x if p == pg.user_inputs[0] else pg.bound[p] for p in pg.placeholders]
        )
    return values
