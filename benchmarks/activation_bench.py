"""Activation statistics vs a plain forward pass of the same exported program.

The floor is the exported graph itself run as compiled Python (``ep.graph_module`` with the
lifted parameters bound: exactly the aten ops the tracer replays, without any statistics).
Contenders, per model, in one process with rounds interleaved (so a noisy neighbour hits every
contender alike); each reported number is the median over rounds of the per-round ratio
trace / forward:

- ``stats``: :func:`trace_activations` with default settings;
- ``hist``: the same with 32-bin histograms on every node;
- ``inf``: the same program with one inf weight in its third layer (every later node is
  non-finite, so every node also pays for NaN/inf counts, per-row max |x| and per-unit counts).

Models: a 12x512 MLP, a small conv net on 16x16 "images" and the simulator's snapshot MLP.
Run with ``.venv/bin/python benchmarks/activation_bench.py [--rounds 9] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.fx
from torch import nn

from hawknb.kernels.activations import trace_activations
from hawknb.kernels.graph import program_graph

DYN = ({0: torch.export.Dim("batch", min=1)},)


class DeepMLP(nn.Module):
    def __init__(self, n_in: int = 64, width: int = 512, depth: int = 12) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(n_in, width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.reshape(-1, 1, 16, 16))
        return self.head(h.flatten(1)).squeeze(-1)


def _simulator_mlp() -> nn.Module:
    from hawknb.simulate.models import SnapshotMLP

    return SnapshotMLP(24, 32, "sigmoid")


def _with_inf(m: nn.Module) -> nn.Module:
    """A copy whose third weight matrix (in state_dict order) holds one inf."""
    bad = copy.deepcopy(m)
    weights = [p for k, p in bad.named_parameters() if k.endswith("weight")]
    with torch.no_grad():
        weights[min(2, len(weights) - 1)].view(-1)[0] = float("inf")
    return bad


def _forward(ep: torch.export.ExportedProgram, x: torch.Tensor) -> Callable[[], object]:
    pg = program_graph(ep)
    args = [x if n == pg.user_inputs[0] else pg.bound[n] for n in pg.placeholders]

    def run() -> object:
        with torch.no_grad():
            return pg.module(*args)

    return run


def _trace(ep: torch.export.ExportedProgram, x: torch.Tensor, bins: int) -> Callable[[], object]:
    xn = x.numpy()
    return lambda: trace_activations(ep, xn, histogram_bins=bins)


def _cases() -> list[tuple[str, nn.Module, int, int]]:
    """(name, module, n_features, rows)."""
    torch.manual_seed(0)
    return [
        ("MLP 12x512, 2,048 rows", DeepMLP(), 64, 2048),
        ("conv net 16x16, 1,024 rows", ConvNet(), 256, 1024),
        ("simulator snapshot MLP 24-32-32-1, 4,096 rows", _simulator_mlp(), 24, 4096),
    ]


def _reductions(ep: torch.export.ExportedProgram, x: torch.Tensor) -> Callable[[], object]:
    """Four bare reductions (min, max, sum, dot) over every node's value, computed ahead:
    what exact statistics cost without any bookkeeping (a reference, not a bound)."""
    pg = program_graph(ep)
    values: list[np.ndarray] = []

    class Keep(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> object:
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                values.append(out.detach().float().contiguous().reshape(-1).numpy())
            return out

    with torch.no_grad():
        Keep(pg.module).run(
            *[x if n == pg.user_inputs[0] else pg.bound[n] for n in pg.placeholders]
        )

    def run() -> None:
        for v in values:
            v.min(), v.max(), torch.from_numpy(v).sum(), np.dot(v, v)

    return run


def _time(f: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU time (all threads) is what a loaded machine's
    scheduler cannot inflate."""
    t0, c0 = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - t0, time.process_time() - c0


def bench(rounds: int, only: str = "") -> list[dict[str, object]]:
    rows = []
    for name, module, n_feat, n_rows in _cases():
        if only not in name:
            continue
        module.eval()
        x = torch.randn(n_rows, n_feat)
        ep = torch.export.export(module, (x[:4],), dynamic_shapes=DYN)
        ep_inf = torch.export.export(_with_inf(module).eval(), (x[:4],), dynamic_shapes=DYN)
        contenders: dict[str, Callable[[], object]] = {
            "forward": _forward(ep, x),
            "stats": _trace(ep, x, 0),
            "hist": _trace(ep, x, 32),
            "forward_inf": _forward(ep_inf, x),
            "inf": _trace(ep_inf, x, 0),
            "reductions": _reductions(ep, x),
        }
        for f in contenders.values():  # warm-up
            f()
        wall: dict[str, list[float]] = {k: [] for k in contenders}
        cpu: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(rounds):
            for k, f in contenders.items():
                w, c = _time(f)
                wall[k].append(w)
                cpu[k].append(c)

        def ratio(times: dict[str, list[float]], k: str, base: str) -> float:
            return statistics.median(
                a / max(b, 1e-9) for a, b in zip(times[k], times[base], strict=True)
            )

        row: dict[str, object] = {
            "model": name,
            "forward_ms": 1e3 * statistics.median(wall["forward"]),
        }
        for clock, times in (("cpu", cpu), ("wall", wall)):
            row[f"stats_{clock}"] = ratio(times, "stats", "forward")
            row[f"hist_{clock}"] = ratio(times, "hist", "forward")
            row[f"inf_{clock}"] = ratio(times, "inf", "forward_inf")
            row[f"floor_{clock}"] = 1 + ratio(times, "reductions", "forward")
        rows.append(row)
        print(row, flush=True)
    return rows


def render(rows: list[dict[str, object]], rounds: int, load: tuple[float, float]) -> str:
    lines = [
        "# Activation statistics vs a plain forward pass",
        "",
        f"`benchmarks/activation_bench.py --rounds {rounds}`, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s); medians of per-round ratios (trace / forward "
        "of the same exported graph), rounds interleaved. Load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after (2 cores, shared with other sessions).",
        "",
        "Each cell: CPU-time ratio / wall-clock ratio. `reference` is the forward plus four bare "
        "reductions (min, max, sum, dot) over every node value, computed ahead with no "
        "bookkeeping: about what exact statistics cost however they are organised.",
        "",
        "| model | forward (ms) | stats | + 32-bin histograms | inf weight | reference |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            f"{r[f'{k}_cpu']:.2f}x / {r[f'{k}_wall']:.2f}x"
            for k in ("stats", "hist", "inf", "floor")
        ]
        lines.append(f"| {r['model']} | {r['forward_ms']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", default="", help="run the models whose name contains this")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier ratios)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    before = os.getloadavg()[0]
    rows = bench(args.rounds, args.only)
    text = render(rows, args.rounds, (before, os.getloadavg()[0]))
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
