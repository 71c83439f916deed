"""Snapshots: small torch MLPs fitted to a hidden true model, their faults, and their export.

The hidden "true" model of each role is itself an MLP on standardized features (the
standardization is folded into the first layer, so a snapshot reads raw logged features).
Snapshots are that true model plus a small per-day weight drift and a calibration offset taken
from the label mean of the partitions they were trained on -- which is how inflated training
labels turn into an over-predicting snapshot. Faults edit named layers (`net.0`, `net.2`, ...)
exactly as a broken checkpoint would.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

Weights = dict[str, np.ndarray]
LAYERS = ("net.0", "net.2", "net.4")


class SnapshotMLP(nn.Module):
    """Input float32 [batch, n_features] -> output [batch] in prediction units."""

    def __init__(self, n_in: int, hidden: int, link: str) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.link = link

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x).squeeze(-1)
        if self.link == "sigmoid":
            return torch.sigmoid(y)
        return y


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def _relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0.0)


def forward_np(w: Weights, x: np.ndarray) -> np.ndarray:
    """The pre-link output (logit or value) of an MLP in float64, for calibration."""
    h = _relu(x @ w["net.0.weight"].T + w["net.0.bias"])
    h = _relu(h @ w["net.2.weight"].T + w["net.2.bias"])
    return (h @ w["net.4.weight"].T + w["net.4.bias"])[:, 0]


def true_model(
    rng: np.random.Generator,
    importance: np.ndarray,
    hidden: int,
    x_cal: np.ndarray,
    *,
    link: str,
    base: float,
    spread: float,
) -> Weights:
    """Draw the hidden true model for calibration sample `x_cal` (raw features).

    `base` is the mean prediction (a rate for sigmoid links) and `spread` the standard
    deviation of the pre-link output, so every role gets a realistic, informative model.
    """
    n_in = x_cal.shape[1]
    mu = x_cal.mean(0)
    sd = x_cal.std(0) + 1e-9
    w0 = rng.standard_normal((hidden, n_in)) * importance[None, :] / np.sqrt(n_in)
    b0 = rng.normal(0.1, 0.3, hidden)
    w = {
        "net.0.weight": w0 / sd[None, :],
        "net.0.bias": b0 - (w0 * (mu / sd)[None, :]).sum(1),
        "net.2.weight": rng.standard_normal((hidden, hidden)) * np.sqrt(2.0 / hidden),
        "net.2.bias": rng.normal(0.05, 0.1, hidden),
        "net.4.weight": rng.standard_normal((1, hidden)) * np.sqrt(1.0 / hidden),
        "net.4.bias": np.zeros(1),
    }
    out = forward_np(w, x_cal)
    s = out.std() + 1e-9
    w["net.4.weight"] *= spread / s
    target = _logit(base) if link == "sigmoid" else base
    out = forward_np(w, x_cal)
    w["net.4.bias"] = w["net.4.bias"] + (target - out.mean())
    return w


def perturb(rng: np.random.Generator, w: Weights, rel: float) -> Weights:
    """Small noise on every tensor: snapshot-to-snapshot drift.

    The noise is relative to each input column's own scale, because the first layer folds in
    the features' standardization and its columns differ by orders of magnitude.
    """
    out = {}
    for k, v in w.items():
        if v.ndim == 2:
            scale = np.sqrt(np.mean(v**2, axis=0, keepdims=True)) + 1e-12
        else:
            scale = np.sqrt(np.mean(v**2)) + 1e-12
        out[k] = v + rng.standard_normal(v.shape) * rel * scale
    return out


def calibrate(w: Weights, shift: float) -> Weights:
    """Move the output bias by `shift` (logit or value units), as training on partitions with
    a different label mean does."""
    out = dict(w)
    out["net.4.bias"] = w["net.4.bias"] + shift
    return out


def corrupt(rng: np.random.Generator, w: Weights, subtype: str, layer: str) -> tuple[Weights, dict]:
    """A broken checkpoint: `scaled_weights`, `nan_weights`, `inf_weights` or `blown_bias`."""
    out = {k: v.copy() for k, v in w.items()}
    wk, bk = f"{layer}.weight", f"{layer}.bias"
    detail: dict = {"subtype": subtype, "layer": layer}
    if subtype == "scaled_weights":
        factor = float(rng.uniform(6.0, 25.0)) * float(rng.choice([1.0, -1.0]))
        out[wk] = out[wk] * factor
        detail["factor"] = factor
    elif subtype in ("nan_weights", "inf_weights"):
        n = out[wk].size
        k = max(1, int(n * rng.uniform(0.01, 0.05)))
        idx = rng.choice(n, size=k, replace=False)
        flat = out[wk].reshape(-1)
        flat[idx] = np.nan if subtype == "nan_weights" else np.inf
        out[wk] = flat.reshape(out[wk].shape)
        detail["n_entries"] = int(k)
    elif subtype == "blown_bias":
        n = out[bk].size
        k = max(1, int(n * rng.uniform(0.1, 0.4)))
        idx = rng.choice(n, size=k, replace=False)
        mag = float(rng.uniform(30.0, 300.0))
        out[bk][idx] = out[bk][idx] + mag * rng.choice([1.0, -1.0], size=k)
        detail["magnitude"] = mag
        detail["n_entries"] = int(k)
    else:  # pragma: no cover - planned by incidents.py
        raise ValueError(f"unknown snapshot fault {subtype!r}")
    return out, detail


def plant_blowup(
    rng: np.random.Generator, w: Weights, feature: int, threshold: float, sd: float
) -> tuple[Weights, dict]:
    """A hidden unit of `net.0` that fires only when `feature` exceeds `threshold`, read by
    `net.2` with a weight so large that its output overflows float32 (to inf, then NaN)."""
    out = {k: v.copy() for k, v in w.items()}
    hidden = out["net.0.weight"].shape[0]
    j = int(rng.integers(hidden))
    gain = float(rng.uniform(5.0, 20.0))
    out["net.0.weight"][j, :] = 0.0
    out["net.0.weight"][j, feature] = gain / sd
    out["net.0.bias"][j] = -gain * threshold / sd
    big = float(10.0 ** rng.uniform(37.5, 38.3))
    out["net.2.weight"][:, j] = big * rng.choice([1.0, -1.0], size=hidden)
    return out, {"unit": j, "gain": gain, "weight": big, "gate_layer": "net.0"}


def to_state_dict(w: Weights) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in w.items()}


class Runner:
    """Runs and exports the snapshots of one model architecture.

    `torch.export.export` is traced once per architecture; each snapshot is saved by swapping
    the exported program's parameters, which is what re-exporting the same module with new
    weights would produce, at a fraction of the cost.
    """

    def __init__(self, n_in: int, hidden: int, link: str) -> None:
        self.module = SnapshotMLP(n_in, hidden, link).eval()
        self.n_in = n_in
        self._exported = None

    def predict(self, w: Weights, x: np.ndarray) -> np.ndarray:
        self.module.load_state_dict(to_state_dict(w))
        with torch.no_grad():
            return self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def export(self, w: Weights, path: Path) -> None:
        sd = to_state_dict(w)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self._exported is None:
                self.module.load_state_dict(sd)
                batch = torch.export.Dim("batch", min=1)
                self._exported = torch.export.export(
                    self.module,
                    (torch.zeros(4, self.n_in),),
                    dynamic_shapes=({0: batch},),
                )
            params = self._exported.state_dict
            for k, v in sd.items():
                params[k] = nn.Parameter(v.clone(), requires_grad=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            # serialized in memory, written by Python: torch's own file writer turns a full disk
            # into a C++ abort instead of an OSError
            buf = io.BytesIO()
            torch.export.save(self._exported, buf)
            path.write_bytes(buf.getvalue())
