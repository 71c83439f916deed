"""Feature ablation: time against its forward-pass floor, and the sampled ranking's agreement.

Speed: :func:`ablation_importance` on 100 features x 10k rows needs at least 101 forward passes
of 10k rows (the unablated batch plus one per feature); that is the floor. Both run in one
process, rounds interleaved; the number is the median of per-round ratios.

Agreement: :func:`importance_shift` samples 2,048 rows per window by default. On a model where
the anomaly window moves known features, the sampled shift ranking is compared with the exact
one (every row of both windows): top-5 overlap and Spearman correlation of the shift, over
several seeds. Run with ``.venv/bin/python benchmarks/ablation_bench.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from hawknb.kernels.attribution import ablation_importance, importance_shift


def make_model(n_feat: int, seed: int, hidden: int = 64, depth: int = 1) -> nn.Module:
    """A ReLU MLP whose first-layer weight on feature j decays with j (feature 0 matters most)."""
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(n_feat, hidden), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), nn.ReLU()]
    m = nn.Sequential(*layers, nn.Linear(hidden, 1))
    with torch.no_grad():
        scale = torch.linspace(2.0, 0.2, n_feat)
        m[0].weight.copy_(torch.randn(hidden, n_feat, generator=g) * scale / n_feat**0.5)
    return m.eval()


def make_windows(
    n_feat: int, rows: int, moved: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Control and anomaly rows; in the anomaly the ``moved`` features spread 4x wider."""
    rng = np.random.default_rng(seed)
    xc = rng.normal(size=(rows, n_feat)).astype(np.float32)
    xa = rng.normal(size=(rows, n_feat)).astype(np.float32)
    xa[:, moved] *= 4.0
    return xc, xa


def _speed(rounds: int, hidden: int, depth: int, n_feat: int = 100, rows: int = 10_000) -> float:
    model = make_model(n_feat, 0, hidden, depth)
    x = np.random.default_rng(0).normal(size=(rows, n_feat)).astype(np.float32)
    xt = torch.from_numpy(x)

    def floor() -> None:
        with torch.no_grad():
            for _ in range(n_feat + 1):
                model(xt)

    def ablation() -> None:
        ablation_importance(model, x, batch_size=rows)

    floor(), ablation()
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        floor()
        t1 = time.perf_counter()
        ablation()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(ratios)


def agreement(
    seed: int, n_feat: int = 100, rows: int = 10_000, sample: int = 2048
) -> tuple[float, float]:
    """(top-5 overlap, Spearman of the shift) between a ``sample``-row and an all-rows run."""
    rng = np.random.default_rng(seed)
    moved = rng.choice(n_feat // 2, size=5, replace=False)  # among the weightier half
    model = make_model(n_feat, seed)
    xc, xa = make_windows(n_feat, rows, moved, seed)
    kw = {"n_bootstrap": 50, "seed": seed}
    sampled = importance_shift(model, xc, xa, sample_rows=sample, max_rows=sample, **kw)
    exact = importance_shift(model, xc, xa, sample_rows=rows, max_rows=rows, **kw)
    top_s = set(np.argsort(-sampled.shift)[:5])
    top_e = set(np.argsort(-exact.shift)[:5])
    rho = float(spearmanr(sampled.shift, exact.shift).statistic)
    return len(top_s & top_e) / 5, rho


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [(64, 1), (256, 3)]
    ratios = [_speed(args.rounds, h, d) for h, d in sizes]
    agree = [agreement(s) for s in range(args.seeds)]
    lines = [
        "# Feature ablation: speed and sampled-vs-exact agreement",
        "",
        f"`benchmarks/ablation_bench.py --rounds {args.rounds} --seeds {args.seeds}`, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| measure | value |",
        "|---|---|",
        *(
            f"| ablation_importance (200 bootstrap resamples), 100 features x 10k rows, MLP "
            f"{d}x{h} / 101 forwards of 10k rows | {r:.2f}x |"
            for (h, d), r in zip(sizes, ratios, strict=True)
        ),
        f"| importance shift, 2,048 sampled rows vs all 10k: top-5 overlap (min / median "
        f"over {args.seeds} seeds) | {min(a for a, _ in agree):.2f} / "
        f"{statistics.median(a for a, _ in agree):.2f} |",
        f"| same: Spearman of the shift (min / median) | {min(r for _, r in agree):.3f} / "
        f"{statistics.median(r for _, r in agree):.3f} |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
