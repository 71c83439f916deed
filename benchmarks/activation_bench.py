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

Floors, measured in the same rounds:

- ``book``: the full trace with the statistics themselves replaced by a constant: the
  instrumented pass, the recorder's bookkeeping and the trace's records;
- ``red``: a sink handed to the same instrumented graph (so the work lands right after each
  op, where the trace does it) that only runs four bare reductions (min, max, sum, dot) on
  every value: exact statistics with no bookkeeping (for the inf program, NaN/inf counts
  where min/max are not finite: ``red_inf``);
- ``bin``: the same plus the histogram's binning of every value (subtract, scale, ``bincount``
  on the same strided sample of at most ``HIST_SAMPLE`` values).

A contender faster than ``REP_SECONDS`` runs back to back that long in each round (its time is
the mean of those calls), so that a sub-millisecond pass is timed in its own steady state.

With ``--baseline REV`` the trace as of git revision ``REV`` (its ``hawknb`` package, imported
under another name) runs in the same rounds as ``stats@REV``, ``hist@REV`` and ``inf@REV``:
before and after in one process, so that both meet the same load.

Models: a 12x512 MLP, a small conv net on 16x16 "images" and the simulator's snapshot MLP.
Run with ``.venv/bin/python benchmarks/activation_bench.py [--rounds 9] [--baseline REV]
[--out FILE]``; on a shared machine ``OPENBLAS_NUM_THREADS=1 chrt -f 1`` in front keeps the other
load off the timed core. From a git worktree put ``PYTHONPATH=<worktree>`` in front too: the
script's folder, not the tree's root, leads ``sys.path``, so the venv's editable install (the
main checkout) would be timed otherwise (it warns).
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import importlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from hawknb.kernels import trace_run
from hawknb.kernels.activations import trace_activations
from hawknb.kernels.graph import program_graph
from hawknb.kernels.tensor_stats import HIST_SAMPLE, TensorStats

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


def _trace(
    ep: torch.export.ExportedProgram, x: torch.Tensor, bins: int, tracer: Callable[..., object]
) -> Callable[[], object]:
    xn = x.numpy()
    return lambda: tracer(ep, xn, histogram_bins=bins)


def baseline(rev: str) -> ModuleType:
    """``hawknb.kernels.activations`` as of git revision ``rev``: that revision's ``hawknb``
    package extracted to a temporary folder as ``hawknb_base`` (its modules import each other
    relatively, so none of today's code runs in it)."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "hawknb"], check=True, capture_output=True
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="activation_bench_"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "hawknb").rename(folder / "hawknb_base")
    sys.path.insert(0, str(folder))
    return importlib.import_module("hawknb_base.kernels.activations")


def _cases() -> list[tuple[str, nn.Module, int, int]]:
    """(name, module, n_features, rows)."""
    torch.manual_seed(0)
    return [
        ("MLP 12x512, 2,048 rows", DeepMLP(), 64, 2048),
        ("conv net 16x16, 1,024 rows", ConvNet(), 256, 1024),
        ("simulator snapshot MLP 24-32-32-1, 4,096 rows", _simulator_mlp(), 24, 4096),
    ]


class _BareSink:
    """A sink for the instrumented graph that runs only the bare work on each value: four
    reductions (two for a ReLU, whose extremes follow from its input's; none for a view or a
    parameter, which the trace reuses), NaN/inf counts where min/max are not finite, and with
    ``bins`` the binning of an evenly strided sample."""

    def __init__(self, bins: int, params: frozenset[str]) -> None:
        self.bins = bins
        self.params = params

    def settle(self) -> None:
        pass

    def record(self, name: str, value: object, per_row: bool, hint: object) -> None:
        if not isinstance(value, torch.Tensor) or value.numel() == 0 or name in self.params:
            return
        if hint is not None and hint[0] == "same":  # type: ignore[index]
            return
        if value.dtype == torch.float32 and value.is_contiguous():
            v = value.numpy().reshape(-1)
        else:
            v = value.detach().float().contiguous().reshape(-1).numpy()
        if hint is not None and hint[0] == "relu":  # type: ignore[index]  # extremes known
            torch.from_numpy(v).sum(), np.dot(v, v)
            lo, hi = 0.0, 1.0
        else:
            lo, hi = v.min(), v.max()
            torch.from_numpy(v).sum(), np.dot(v, v)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            np.count_nonzero(np.isnan(v)), np.count_nonzero(np.isfinite(v))
            return
        if self.bins:
            sample = v[:: max(1, v.size // HIST_SAMPLE)]
            t = np.subtract(sample, lo) * (self.bins / max(hi - lo, 1e-30))
            np.bincount(t.astype(np.int32), minlength=self.bins + 1)


def _bare(ep: torch.export.ExportedProgram, x: torch.Tensor, bins: int) -> Callable[[], object]:
    """The instrumented pass with :class:`_BareSink` (the floor of exact statistics)."""
    pg = program_graph(ep)
    args = [x if n == pg.user_inputs[0] else pg.bound[n] for n in pg.placeholders]
    run = trace_run.instrumented(pg.module)
    params = frozenset(pg.bound)

    def go() -> object:
        with torch.no_grad():
            return run(*args, _BareSink(bins, params))

    return go


def fused_kernel() -> Callable[[int, int], object] | None:
    """``stats4(address, n)`` of ``fused_floor.c`` (min, max, sum and sum of squares of n
    float32 values in one pass), built with the C compiler on PATH; None without one."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    lib = Path(tempfile.mkdtemp(prefix="fused_floor_")) / "fused_floor.so"
    flags = [
        "-O3",
        "-march=native",
        "-fno-trapping-math",
        "-fassociative-math",
        "-fno-signed-zeros",
    ]
    src = str(Path(__file__).with_name("fused_floor.c"))
    built = subprocess.run([cc, *flags, "-shared", "-fPIC", src, "-o", str(lib)], check=False)
    if built.returncode != 0:
        return None
    stats4 = ctypes.CDLL(str(lib)).stats4
    stats4.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]
    out = np.zeros(4)
    return lambda address, n: stats4(address, n, out.ctypes.data)


class _FusedSink(_BareSink):
    """The compiled floor: one pass of :func:`fused_kernel` over every value the trace
    summarizes itself (none for a view or a parameter), float32 (others converted first)."""

    def __init__(self, kernel: Callable[[int, int], object], params: frozenset[str]) -> None:
        super().__init__(0, params)
        self.kernel = kernel

    def record(self, name: str, value: object, per_row: bool, hint: object) -> None:
        if not isinstance(value, torch.Tensor) or value.numel() == 0 or name in self.params:
            return
        if hint is not None and hint[0] == "same":  # type: ignore[index]
            return
        if value.dtype != torch.float32 or not value.is_contiguous():
            value = value.detach().float().contiguous()
        self.kernel(value.data_ptr(), value.numel())


def _fused(
    ep: torch.export.ExportedProgram, x: torch.Tensor, kernel: Callable[[int, int], object]
) -> Callable[[], object]:
    """The instrumented pass with :class:`_FusedSink` (the floor of a compiled kernel)."""
    pg = program_graph(ep)
    args = [x if n == pg.user_inputs[0] else pg.bound[n] for n in pg.placeholders]
    run = trace_run.instrumented(pg.module)
    params = frozenset(pg.bound)

    def go() -> object:
        with torch.no_grad():
            return run(*args, _FusedSink(kernel, params))

    return go


_ZERO = TensorStats(1, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _bookkeeping(ep: torch.export.ExportedProgram, x: torch.Tensor) -> Callable[[], object]:
    """The full trace with the statistics replaced by a constant (what is left is the pass,
    the recorder's bookkeeping and the trace's records)."""
    trace = _trace(ep, x, 0, trace_activations)
    names = ("tensor_stats", "batch_stats", "_param_stats", "stats_and_positive", "relu_stats")
    real = {k: getattr(trace_run, k) for k in names}
    fake = {
        "tensor_stats": lambda v, bins=0, bounds=None: _ZERO,
        "batch_stats": lambda vs, bins=0: [_ZERO] * len(vs),
        "_param_stats": lambda ps, bins: [_ZERO] * len(ps),
        "stats_and_positive": lambda v, bins=0, relu=False: (_ZERO, None),
        "relu_stats": lambda y, bins, bounds, positive: _ZERO,
    }

    def go() -> object:
        for k, f in fake.items():
            setattr(trace_run, k, f)
        try:
            return trace()
        finally:
            for k, f in real.items():
                setattr(trace_run, k, f)

    return go


#: each contender runs back to back for about this long per round (at least once)
REP_SECONDS = 0.02


def _time(f: Callable[[], object], reps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one call, averaged over ``reps`` calls back to back; CPU time
    (all threads) is what a loaded machine's scheduler cannot inflate. Repeating a
    sub-millisecond call measures it in its own steady state: a single call's time depends on
    what ran before it (a 0.3 ms forward pass read 0.3 or 0.6 ms depending on the contender
    that preceded it in the round)."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps, (time.process_time() - c0) / reps


def _contenders(
    ep: torch.export.ExportedProgram,
    ep_inf: torch.export.ExportedProgram,
    x: torch.Tensor,
    base: tuple[str, ModuleType] | None,
) -> dict[str, Callable[[], object]]:
    """Every contender of one model, in the order each round runs them."""
    contenders: dict[str, Callable[[], object]] = {
        "forward": _forward(ep, x),
        "stats": _trace(ep, x, 0, trace_activations),
        "hist": _trace(ep, x, 32, trace_activations),
        "forward_inf": _forward(ep_inf, x),
        "inf": _trace(ep_inf, x, 0, trace_activations),
        "book": _bookkeeping(ep, x),
        "red": _bare(ep, x, 0),
        "bin": _bare(ep, x, 32),
        "red_inf": _bare(ep_inf, x, 0),
    }
    kernel = fused_kernel()
    if kernel is not None:
        contenders["fused"] = _fused(ep, x, kernel)
        contenders["fused_inf"] = _fused(ep_inf, x, kernel)
    if base is not None:
        old = base[1].trace_activations
        contenders["stats_base"] = _trace(ep, x, 0, old)
        contenders["hist_base"] = _trace(ep, x, 32, old)
        contenders["inf_base"] = _trace(ep_inf, x, 0, old)
    return contenders


def bench(
    rounds: int, only: str = "", base: tuple[str, ModuleType] | None = None
) -> list[dict[str, object]]:
    rows = []
    for name, module, n_feat, n_rows in _cases():
        if only not in name:
            continue
        module.eval()
        x = torch.randn(n_rows, n_feat)
        ep = torch.export.export(module, (x[:4],), dynamic_shapes=DYN)
        ep_inf = torch.export.export(_with_inf(module).eval(), (x[:4],), dynamic_shapes=DYN)
        contenders = _contenders(ep, ep_inf, x, base)
        for f in contenders.values():  # warm-up
            f()
        reps = max(1, round(REP_SECONDS / max(_time(contenders["forward"], 1)[0], 1e-6)))
        wall: dict[str, list[float]] = {k: [] for k in contenders}
        cpu: dict[str, list[float]] = {k: [] for k in contenders}
        order = list(contenders)
        for _ in range(rounds):
            for k in order:
                w, c = _time(contenders[k], reps)
                wall[k].append(w)
                cpu[k].append(c)
            order.reverse()  # every contender runs early in half the rounds, late in the others

        def ratio(times: dict[str, list[float]], k: str, base: str) -> float:
            return statistics.median(
                a / max(b, 1e-9) for a, b in zip(times[k], times[base], strict=True)
            )

        row: dict[str, object] = {
            "model": name,
            "forward_ms": 1e3 * statistics.median(wall["forward"]),
            "reps": reps,
        }
        for clock, times in (("cpu", cpu), ("wall", wall)):
            for k in contenders:
                if k.startswith("forward"):
                    continue
                inf = k.startswith(("inf", "red_inf")) or k.endswith("_inf")
                base_key = "forward_inf" if inf else "forward"
                row[f"{k}_{clock}"] = ratio(times, k, base_key)
        rows.append(row)
        print(row, flush=True)
    return rows


def render(
    rows: list[dict[str, object]], rounds: int, load: tuple[float, float], base: str | None = None
) -> str:
    flag = f" --baseline {base}" if base else ""
    lines = [
        "# Activation statistics vs a plain forward pass",
        "",
        f"`benchmarks/activation_bench.py --rounds {rounds}{flag}`, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s); medians of per-round ratios (trace / forward "
        "of the same exported graph), rounds interleaved (the contenders' order reversed every "
        "round). Load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after (2 cores, shared with other sessions); "
        f"{_priority()}.",
        "",
        "Each cell: CPU-time ratio / wall-clock ratio to the plain forward pass of the same "
        "program. Floors (same rounds, work done right after each op by a bare sink handed to "
        "the same instrumented graph): `bookkeeping` is the trace with the statistics "
        "replaced by a constant; `reductions` four bare reductions (min, max, sum, dot) of "
        "every value, with NaN/inf counts where min/max are not finite (inf column); "
        "`+ binning` those plus subtract/scale/`bincount` of each value's strided sample; "
        "`compiled` one pass of a C kernel (`fused_floor.c`: min, max, sum, sum of squares) "
        "over the same values, without bookkeeping, for the plain and the inf-weight program: "
        "what a compiled C kernel reaches (hawknb's own are numba's, `kernels/_stats_jit.py`).",
        "",
        "| model | forward (ms) | stats | + 32-bin histograms | inf weight "
        "| floor: bookkeeping | floor: reductions | floor: + binning | floor: reductions, inf "
        "| floor: compiled | floor: compiled, inf |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [_cell(r, k) for k in _COLUMNS]
        model = f"{r['model']} ({r['reps']} calls a round)" if r["reps"] > 1 else r["model"]
        lines.append(f"| {model} | {r['forward_ms']:.1f} | " + " | ".join(cells) + " |")
        if base is not None and "stats_base_cpu" in r:
            old = [_cell(r, f"{k}_base") for k in _TRACES]
            lines.append(f"| same, at `{base}` | | " + " | ".join(old) + " |" + " |" * 6)
    return "\n".join(lines) + "\n"


def _cell(row: dict[str, object], key: str) -> str:
    if f"{key}_cpu" not in row:
        return "-"
    return f"{row[f'{key}_cpu']:.2f}x / {row[f'{key}_wall']:.2f}x"


_COLUMNS = ("stats", "hist", "inf", "book", "red", "bin", "red_inf", "fused", "fused_inf")


_TRACES = ("stats", "hist", "inf")


def _priority() -> str:
    """How the process was scheduled: under real-time priority (``chrt -f 1``) the other
    sessions' threads stay off the timed core (they still share the caches and memory)."""
    fifo = os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    return f"{'real-time' if fifo else 'normal'} priority, OPENBLAS_NUM_THREADS={blas}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", default="", help="run the models whose name contains this")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier ratios)")
    ap.add_argument("--baseline", default=None, help="also time the trace at this git revision")
    args = ap.parse_args()
    timed = Path(sys.modules["hawknb"].__file__ or "").resolve().parents[1]
    if timed != Path(__file__).resolve().parents[1]:  # e.g. run from a git worktree
        print(f"warning: timing the hawknb of {timed}, not this tree's (set PYTHONPATH)")
    torch.set_num_threads(args.threads)
    base = (args.baseline, baseline(args.baseline)) if args.baseline else None
    before = os.getloadavg()[0]
    rows = bench(args.rounds, args.only, base)
    text = render(rows, args.rounds, (before, os.getloadavg()[0]), args.baseline)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
