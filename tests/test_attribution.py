"""Ablation importance: exact values on a linear model, planted shifts, snapshots, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hawknb.kernels.attribution import (
    ablation_importance,
    importance_shift,
    predict,
    snapshot_importance_shift,
)

NAMES = ["a", "b", "c", "d", "e", "f"]
W = [1.5, -1.0, 0.8, 0.0, 0.0, 0.5]


class Logit(torch.nn.Module):
    """pred = sigmoid(w.x): features d and e have weight 0."""

    def __init__(self, w: list[float], squash: bool = True) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w, dtype=torch.float32))
        self.squash = squash

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.w
        return torch.sigmoid(z) if self.squash else z


def _x(n: int = 6000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, len(NAMES))).astype(np.float32)


def test_linear_model_attribution_is_exact() -> None:
    """For f = w.x, attr_j = w_j (x_j - b_j), so mean |attr| is known in closed form."""
    x = _x(500)
    b = np.median(x, axis=0)
    res = ablation_importance(Logit(W, squash=False), x, baseline="median", feature_names=NAMES)
    expect = np.abs(np.array(W)) * np.abs(x - b).mean(axis=0)
    np.testing.assert_allclose(res.importance, expect, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.mean_attribution, np.array(W) * (x - b).mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(res.baseline, b, rtol=1e-6)
    assert set(res.top(3)) == {"a", "b", "c"}
    assert res.importance[3] == 0.0 and res.importance[4] == 0.0
    assert res.n_rows == 500 and res.n_nonfinite_inputs == 0
    assert 0.0 <= res.topk_stability <= 1.0


def test_shift_in_important_feature_ranks_first_and_zero_weight_drift_is_ignored() -> None:
    xc, xa = _x(seed=1), _x(seed=2)
    xa[:, 0] += 1.0  # important feature shifted
    xa[:, 3] = xa[:, 3] * 5 + 20  # zero-weight feature drifts enormously
    res = importance_shift(Logit(W), xc, xa, feature_names=NAMES, seed=3)
    assert res.top(1) == ["a"]
    assert res.shift[3] == 0.0 and res.explained_shift[3] == 0.0
    assert res.frame().filter(feature="d")["rank"][0] >= 5
    assert res.prediction_shift > 0.05
    assert res.explained_shift[0] == pytest.approx(res.prediction_shift, rel=0.35)
    assert res.topk_stability >= 0.9
    assert res.top_frequency[0] == pytest.approx(1.0)


def test_feature_stuck_at_default_is_detected() -> None:
    xc, xa = _x(seed=4), _x(seed=5)
    xa[:, 1] = float(np.median(xc[:, 1]))  # pipeline fills the default value
    res = importance_shift(Logit(W), xc, xa, feature_names=NAMES, seed=0)
    assert res.top(1) == ["b"]
    assert res.after.importance[1] == pytest.approx(0.0, abs=1e-7)
    assert res.shift[1] < 0


@pytest.mark.parametrize("new_w", [2.5, -0.8])
def test_snapshot_shift_finds_the_changed_weight(new_w: float) -> None:
    w2 = list(W)
    w2[2] = new_w  # c's weight grows, or flips sign (mean |attr| alone cannot see a flip)
    res = snapshot_importance_shift(Logit(W), Logit(w2), _x(), feature_names=NAMES, seed=0)
    assert res.top(1) == ["c"]
    assert res.paired
    assert res.attribution_change[3] == 0.0


def test_exported_programs_static_and_dynamic_batch() -> None:
    m = Logit(W)
    x = _x(1000)
    static = torch.export.export(m, (torch.randn(64, len(NAMES)),))
    batch = torch.export.Dim("batch")
    dynamic = torch.export.export(m, (torch.randn(64, len(NAMES)),), dynamic_shapes=({0: batch},))
    ref = ablation_importance(m, x, feature_names=NAMES, n_bootstrap=0)
    for prog in (static, dynamic):
        np.testing.assert_allclose(predict(prog, x), predict(m, x), rtol=1e-6)
        res = ablation_importance(prog, x, feature_names=NAMES, batch_size=300, n_bootstrap=0)
        np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-7)


def test_nan_inputs_are_counted_and_excluded() -> None:
    xc, xa = _x(seed=6), _x(seed=7)
    xc[:50, 0] = np.nan
    xa[:30, 2] = np.inf
    res = importance_shift(Logit(W), xc, xa, feature_names=NAMES, sample_rows=8000, seed=0)
    assert res.before.n_nonfinite_inputs == 50 and res.after.n_nonfinite_inputs == 30
    assert res.before.n_nonfinite_outputs == 50
    assert np.isfinite(res.before.importance).all() and np.isfinite(res.shift).all()


def test_sampling_is_deterministic_for_a_seed() -> None:
    xc, xa = _x(20_000, 8), _x(20_000, 9)
    xa[:, 5] += 1
    r1 = importance_shift(Logit(W), xc, xa, feature_names=NAMES, sample_rows=1000, seed=11)
    r2 = importance_shift(Logit(W), xc, xa, feature_names=NAMES, sample_rows=1000, seed=11)
    np.testing.assert_array_equal(r1.shift, r2.shift)
    assert r1.topk_stability == r2.topk_stability
    assert r1.n_rows >= 1000


def test_bad_inputs() -> None:
    m = Logit(W)
    with pytest.raises(ValueError, match="columns but 5 feature_names"):
        ablation_importance(m, _x(10), feature_names=NAMES[:5])
    with pytest.raises(ValueError, match="no rows"):
        ablation_importance(m, np.empty((0, 6), np.float32), feature_names=NAMES)
    x = _x(10)
    x[:, 4] = np.nan
    with pytest.raises(ValueError, match=r"\['e'\] have no finite value"):
        ablation_importance(m, x, feature_names=NAMES)
    with pytest.raises(ValueError, match="NaN/inf"):
        ablation_importance(m, _x(10), baseline=[np.nan] * 6, feature_names=NAMES)
    with pytest.raises(ValueError, match="one prediction per row"):
        ablation_importance(
            lambda t: torch.stack([t[:, 0], t[:, 1]], 1), _x(10), feature_names=NAMES
        )
    with pytest.raises(ValueError, match="duplicates"):
        ablation_importance(m, _x(10), feature_names=["a"] * 6)
    with pytest.raises(TypeError, match="ExportedProgram"):
        ablation_importance(42, _x(10), feature_names=NAMES)
