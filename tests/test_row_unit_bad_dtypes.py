"""Per-row/per-unit badness is the same whatever the tensor's dtype or grad state (the float32,
no-grad case skips the conversions), and leaves the caller's tensor untouched."""

from __future__ import annotations

import math

import numpy as np
import torch

from hawknb.kernels.tensor_stats import row_unit_bad


def test_dtypes_and_grad_agree_with_float32() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1e6, (50, 3)).astype(np.float32)
    a[4, 1], a[7, 0], a[9, 2] = math.nan, math.inf, -math.inf
    ref = row_unit_bad(torch.from_numpy(a.copy()), 50, 1e6)
    assert np.isinf(ref.row_max_abs[[4, 7, 9]]).all()
    for t in (
        torch.from_numpy(a.astype(np.float64)),
        torch.from_numpy(a.copy()).requires_grad_(),
        torch.from_numpy(a.copy()).T.contiguous().T,  # non-contiguous
    ):
        got = row_unit_bad(t, 50, 1e6)
        assert np.array_equal(got.row_max_abs, ref.row_max_abs)
        assert np.array_equal(got.unit_bad, ref.unit_bad)
    ints = torch.arange(-6, 6).reshape(4, 3)
    w = row_unit_bad(ints, 4, 5.0)
    assert w.row_max_abs.tolist() == [6.0, 3.0, 2.0, 5.0] and w.unit_bad.tolist() == [
        1,
        1,
        1,
    ]  # -6, -5, 5


def test_the_input_is_not_modified() -> None:
    x = torch.tensor([[math.nan, -2.0], [3.0, math.inf]])
    before = x.clone()
    one = row_unit_bad(x.reshape(-1), 4, 1e6)  # one value a row: the |x| array itself
    assert one.row_max_abs.tolist() == [math.inf, 2.0, 3.0, math.inf]
    assert torch.equal(x.nan_to_num(0.0), before.nan_to_num(0.0)) and x[0, 0].isnan()
