"""Weight comparison: planted faults in one layer must rank that layer first."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from hawknb.kernels.weights import compare_weights, program_state

LAYERS = ("net.0", "net.2", "net.4")


class MLP(nn.Module):
    def __init__(self, n: int = 6) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def _drift(state: dict[str, torch.Tensor], scale: float, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: v + scale * v.abs().mean() * torch.randn(v.shape, generator=g) for k, v in state.items()
    }


def _history(n: int = 5, drift: float = 0.02) -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    states = [{k: v.detach().clone() for k, v in MLP().state_dict().items()}]
    for i in range(1, n):
        states.append(_drift(states[-1], drift, seed=i))
    return states


def test_healthy_drift_is_not_suspect() -> None:
    hist = _history()
    cand = _drift(hist[-1], 0.02, seed=99)
    res = compare_weights(cand, hist)
    assert res.suspect_layers == ()
    assert not res.suspect
    assert res.n_stable == 5
    assert all(t.ratio < 2.0 for t in res.tensors)


def test_scaled_layer_ranked_first() -> None:
    hist = _history()
    cand = _drift(hist[-1], 0.02, seed=99)
    cand["net.2.weight"] = cand["net.2.weight"] * 3.0
    res = compare_weights(cand, hist)
    assert res.suspect_layers[0].layer == "net.2"
    assert res.suspect_layers[0].worst_tensor == "net.2.weight"
    assert [s.layer for s in res.suspect_layers] == ["net.2"]
    df = res.frame()
    assert df["tensor"][0] == "net.2.weight"
    assert df["suspect"][0]
    assert df.height == 6


def test_nan_weights_found_with_count() -> None:
    hist = _history()
    cand = _drift(hist[-1], 0.02, seed=99)
    w = cand["net.4.weight"].clone()
    w[0, :3] = float("nan")
    w[0, 5] = float("inf")
    cand["net.4.weight"] = w
    # a large (but finite) change elsewhere must not outrank the non-finite layer
    cand["net.0.weight"] = cand["net.0.weight"] * 5
    res = compare_weights(cand, hist)
    top = res.suspect_layers[0]
    assert top.layer == "net.4"
    assert top.nan_count == 3
    assert top.inf_count == 1
    assert "net.0" in [s.layer for s in res.suspect_layers]


def test_blown_bias_found() -> None:
    hist = _history()
    cand = _drift(hist[-1], 0.02, seed=99)
    cand["net.0.bias"] = cand["net.0.bias"] * 50
    res = compare_weights(cand, hist)
    assert res.suspect_layers[0].layer == "net.0"
    assert res.suspect_layers[0].worst_tensor == "net.0.bias"


def test_works_from_exported_programs() -> None:
    torch.manual_seed(1)
    base = MLP()
    x = torch.randn(4, 6)
    dyn = ({0: torch.export.Dim("batch")},)
    eps = []
    for i in range(4):
        m = MLP()
        m.load_state_dict(_drift(base.state_dict(), 0.02 * (i > 0), seed=i))
        base = m
        eps.append(torch.export.export(m, (x,), dynamic_shapes=dyn))
    bad = MLP()
    sd = _drift(base.state_dict(), 0.02, seed=42)
    sd["net.4.bias"] = sd["net.4.bias"] + 100.0
    bad.load_state_dict(sd)
    ep_bad = torch.export.export(bad, (x,), dynamic_shapes=dyn)
    assert set(program_state(ep_bad)) == {
        f"{layer}.{p}" for layer in LAYERS for p in ("weight", "bias")
    }
    res = compare_weights(ep_bad, eps)
    assert res.suspect_layers[0].layer == "net.4"


def test_single_stable_snapshot_uses_relative_change() -> None:
    hist = _history(n=1)
    cand = dict(hist[0])
    cand["net.2.bias"] = cand["net.2.bias"] * 10
    res = compare_weights(cand, hist)
    assert math.isnan(res.tensors[0].usual_change)
    assert [s.layer for s in res.suspect_layers] == ["net.2"]


def test_shape_change_and_added_tensor_reported() -> None:
    hist = _history(n=2)
    cand = dict(hist[-1])
    cand["net.4.weight"] = torch.zeros(2, 8)
    cand["extra.weight"] = torch.zeros(3)
    res = compare_weights(cand, hist)
    assert res.suspect_layers[0].layer == "net.4"
    assert "shape changed" in res.suspect_layers[0].reason
    assert res.added == ("extra.weight",)
    assert res.suspect


def test_bad_inputs() -> None:
    hist = _history(n=2)
    with pytest.raises(ValueError, match="at least one stable"):
        compare_weights(hist[-1], [])
    with pytest.raises(TypeError, match="sequence"):
        compare_weights(hist[-1], hist[-1])
    with pytest.raises(ValueError, match="no tensors"):
        compare_weights({}, hist)
    with pytest.raises(TypeError):
        compare_weights(42, hist)


@settings(max_examples=25, deadline=None)
@given(
    layer=st.sampled_from(LAYERS),
    param=st.sampled_from(("weight", "bias")),
    factor=st.floats(min_value=2.5, max_value=1e4),
    seed=st.integers(0, 10_000),
)
def test_any_scaled_tensor_ranks_its_layer_first(
    layer: str, param: str, factor: float, seed: int
) -> None:
    hist = _history()
    cand = _drift(hist[-1], 0.02, seed=seed)
    cand[f"{layer}.{param}"] = cand[f"{layer}.{param}"] * factor
    res = compare_weights(cand, hist)
    assert res.suspect_layers[0].layer == layer
    # the inputs are never mutated
    assert not torch.equal(hist[-1][f"{layer}.{param}"], cand[f"{layer}.{param}"])
