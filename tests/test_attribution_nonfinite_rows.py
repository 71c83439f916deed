"""Rows with NaN/inf inputs are counted exactly, also when only an overflowing sum (not a
NaN/inf value) makes the shortcut's sum non-finite."""

from __future__ import annotations

import math

import numpy as np
import torch

from hawknb.kernels.attribution import _nonfinite_rows, ablation_importance


def test_nonfinite_rows_counted_exactly() -> None:
    x = torch.zeros(6, 3)
    assert _nonfinite_rows(x) == 0
    x[1, 0], x[1, 2], x[4, 1] = math.nan, math.inf, -math.inf  # two bad rows
    assert _nonfinite_rows(x) == 2
    big = torch.full((4, 3), 3e38)  # finite values whose float32 sum overflows
    assert not math.isfinite(float(big.sum())) and _nonfinite_rows(big) == 0
    opposite = torch.tensor([[math.inf, 1.0], [-math.inf, 2.0]])  # inf - inf: a NaN sum
    assert _nonfinite_rows(opposite) == 2


def test_ablation_reports_the_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    x[[3, 9, 9], [0, 1, 2]] = np.nan
    res = ablation_importance(lambda t: t.sum(-1), x, baseline=np.zeros(3), n_bootstrap=0)
    assert res.n_nonfinite_inputs == 2
