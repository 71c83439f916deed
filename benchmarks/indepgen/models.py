"""Small torch MLPs standing in for production models, their training, export and breakage.

Two architectures with different module paths (`embed`/`mix`/`head` and `layers.0`/`layers.2`/
`proj`), so nothing downstream can lean on one naming scheme. Inputs are raw served features;
the standardization learned at training time is folded into the first layer's weights, so the
exported program takes the serving log's columns as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


class Tower(nn.Module):
    def __init__(self, d: int, h1: int = 32, h2: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(d, h1)
        self.mix = nn.Linear(h1, h2)
        self.head = nn.Linear(h2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.mix(torch.relu(self.embed(x))))
        return torch.sigmoid(self.head(h)).squeeze(-1)


class Stack(nn.Module):
    def __init__(self, d: int, h1: int = 48, h2: int = 24) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(d, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
        self.proj = nn.Linear(h2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.proj(self.layers(x)))


# (first hidden Linear, second hidden Linear, output Linear) module paths per architecture
LAYERS = {"tower": ("embed", "mix", "head"), "stack": ("layers.0", "layers.2", "proj")}


def new_net(arch: str, d: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return Tower(d) if arch == "tower" else Stack(d)


def linear(net: nn.Module, path: str) -> nn.Linear:
    mod = net.get_submodule(path)
    assert isinstance(mod, nn.Linear)
    return mod


def fit(
    net: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    steps: int,
    seed: int,
    fold: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[nn.Module, list[float], tuple[np.ndarray, np.ndarray]]:
    """Train on raw features; returns (net with folded standardization, losses, (mu, sd)).

    A fresh net (fold None) learns its own standardization; a warm start passes the previous
    snapshot's (mu, sd) and is unfolded with it first, so successive snapshots stay close.
    """
    first = LAYERS["tower" if isinstance(net, Tower) else "stack"][0]
    lin = linear(net, first)
    if fold is None:
        mu = x.mean(axis=0)
        sd = x.std(axis=0) + 1e-6
    else:
        mu, sd = fold
        with torch.no_grad():  # unfold: the working net sees standardized inputs
            lin.weight.mul_(torch.tensor(sd, dtype=torch.float32))
            lin.bias.add_(lin.weight @ torch.tensor(mu / sd, dtype=torch.float32))
    xt = torch.tensor((x - mu) / sd, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
    losses = []
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (min(512, len(xt)),))
        p = net(xt[idx]).reshape(-1).clamp(1e-6, 1 - 1e-6)
        loss = nn.functional.binary_cross_entropy(p, yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    with torch.no_grad():  # fold standardization back into the first layer
        w = lin.weight / torch.tensor(sd, dtype=torch.float32)
        lin.bias.sub_(w @ torch.tensor(mu, dtype=torch.float32))
        lin.weight.copy_(w)
    return net, losses, (mu, sd)


def predict(net: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.tensor(x, dtype=torch.float32)).reshape(-1).double().numpy()


def export(net: nn.Module, d: int, path: Path, cache: dict | None = None) -> None:
    """torch.export with a dynamic batch dimension, saved as a .pt2 archive.

    Snapshots of one model share a graph, so with a `cache` the graph is traced once per
    (architecture, width) and each later snapshot only swaps its weights in before saving.
    """
    key = (type(net).__name__, d)
    prog = None if cache is None else cache.get(key)
    if prog is None:
        batch = torch.export.Dim("batch")
        prog = torch.export.export(
            net.eval(), (torch.zeros(4, d),), dynamic_shapes={"x": {0: batch}}
        )
        if cache is not None:
            cache[key] = prog
    else:
        with torch.no_grad():
            for name, value in net.state_dict().items():
                prog.state_dict[name].copy_(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(prog, str(path))


def corrupt(net: nn.Module, arch: str, rng: np.random.Generator) -> str:
    """Break one layer's weights in place; returns the module path of the broken layer."""
    first, second, out = LAYERS[arch]
    how = int(rng.integers(3))
    with torch.no_grad():
        if how == 0:  # input columns shuffled: a feature-order mismatch at export
            lin = linear(net, first)
            perm = torch.tensor(rng.permutation(lin.weight.shape[1]))
            lin.weight.copy_(lin.weight[:, perm])
            return first
        if how == 1:  # a hidden layer's weights blown up with sign noise
            lin = linear(net, second)
            sign = torch.tensor(np.where(rng.random(lin.weight.shape) < 0.35, -1.0, 1.0))
            lin.weight.mul_(sign.float() * float(rng.uniform(4, 8)))
            return second
        lin = linear(net, out)  # output layer collapsed: miscalibrated, no ranking left
        lin.weight.mul_(float(rng.uniform(-0.3, 0.1)))
        lin.bias.add_(float(rng.choice([-2.5, 2.5])))
        return out


def plant_blowup(
    net: nn.Module, arch: str, col: int, threshold: float, sd: float, rng: np.random.Generator
) -> str:
    """Make activations explode on rows whose input `col` exceeds `threshold`.

    One hidden unit of the first layer is rewired to fire only above the threshold. Either
    that unit itself is huge (the first layer is the bad one) or it stays small and the
    second layer amplifies it (the second layer is). Returns the bad layer's module path.
    """
    first, second, _ = LAYERS[arch]
    l1, l2 = linear(net, first), linear(net, second)
    unit = int(rng.integers(l1.weight.shape[0]))
    direct = bool(rng.random() < 0.5)
    gain = float(10 ** rng.uniform(3, 5)) if direct else 1.0
    with torch.no_grad():
        l1.weight[unit].zero_()
        l1.weight[unit, col] = gain / sd
        l1.bias[unit] = -gain * threshold / sd
        amp = float(10 ** rng.uniform(3, 5)) if not direct else 1.0
        l2.weight[:, unit] = torch.tensor(rng.choice([-1.0, 1.0], l2.weight.shape[0])).float()
        l2.weight[:, unit] *= amp * float(rng.uniform(1, 3))
    return first if direct else second
