"""Batched feature ablation: every grouping of rows and features gives the attributions of one
ablation at a time (and of captum's FeatureAblation), and the block bootstrap keeps the row
bootstrap's spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hawknb.kernels.attribution import (
    _attributions,
    _block_means,
    _bootstrap_weights,
    _Forward,
    _resampled_means,
    ablation_importance,
)


def _model(n_feat: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(n_feat, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
    ).eval()


def _one_at_a_time(model: torch.nn.Module, x: np.ndarray, base: np.ndarray) -> np.ndarray:
    xt = torch.from_numpy(x)
    with torch.no_grad():
        p = model(xt)[:, 0].double()
        cols = []
        for j in range(x.shape[1]):
            xa = xt.clone()
            xa[:, j] = float(base[j])
            cols.append(p - model(xa)[:, 0].double())
    return torch.stack(cols, dim=1).numpy()


@pytest.mark.parametrize("batch_size", [1, 7, 50, 53, 130, 10_000])
def test_every_grouping_matches_one_ablation_at_a_time(batch_size: int) -> None:
    # 53 rows x 7 features: partial last row chunks and partial last feature groups
    rng = np.random.default_rng(0)
    x = rng.normal(size=(53, 7)).astype(np.float32)
    base = np.median(x, axis=0).astype(np.float64)
    model = _model(7)
    a, p = _attributions(_Forward(model), torch.from_numpy(x), base, batch_size)
    np.testing.assert_allclose(a, _one_at_a_time(model, x, base), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        expect = model(torch.from_numpy(x))[:, 0].double().numpy()
    np.testing.assert_allclose(p, expect, rtol=1e-5, atol=1e-6)  # batch-size rounding


def test_matches_captum_feature_ablation() -> None:
    captum = pytest.importorskip("captum.attr")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    model = _model(5)
    res = ablation_importance(model, x, baseline="median", n_bootstrap=0, batch_size=64)
    base = torch.as_tensor(res.baseline, dtype=torch.float32).reshape(1, -1)
    fwd = _Forward(model)
    ref = captum.FeatureAblation(fwd).attribute(torch.from_numpy(x), baselines=base)
    np.testing.assert_allclose(res.attributions, ref.double().numpy(), rtol=1e-5, atol=1e-6)


def test_block_means_and_weights_known_values() -> None:
    a = np.arange(10, dtype=np.float64)[:, None] * np.array([[1.0, -1.0]])
    assert _block_means(a) is a  # fewer rows than blocks: each row its own block
    big = np.repeat(np.arange(4096, dtype=np.float64), 3)[:, None]  # 12,288 rows
    bm = _block_means(big)
    assert bm.shape == (1024, 1)
    np.testing.assert_allclose(bm.mean(), big.mean())
    w = _bootstrap_weights(np.random.default_rng(0), 1024, 50)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert _resampled_means(w, big).shape == (50, 1)


def test_block_bootstrap_spread_matches_row_bootstrap() -> None:
    # iid rows: the standard error of the mean from block resamples ~ sigma / sqrt(n)
    rng = np.random.default_rng(2)
    n = 20_000
    a = rng.normal(size=(n, 3))
    boot = _resampled_means(_bootstrap_weights(rng, 1024, 2000), a)
    se = boot.std(axis=0)
    np.testing.assert_allclose(se, 1 / np.sqrt(n), rtol=0.1)
