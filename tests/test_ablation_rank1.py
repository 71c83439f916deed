"""The rank-1 ablation path: a model that starts with an ``nn.Linear`` on the features gets
its ablated first layer as ``h0 + (b_j - x_j) * W[:, j]``; its attributions equal the plain
path's (one ablated input copy per feature through the whole model), NaN/inf rows included,
and every model it cannot verify takes the plain path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from hawknb.kernels.attribution import (
    _attributions,
    _attributions_plain,
    _attributions_rank1,
    _Forward,
    ablation_importance,
    importance_shift,
)

F = 9


def _mlp(bias: bool = True, act: type[nn.Module] = nn.Tanh, depth: int = 1) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(F, 16, bias=bias), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(16, 16), act()]
    return nn.Sequential(*layers, nn.Linear(16, 1))


def _rows(n: int = 61, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, F)).astype(np.float32))


def _base(x: torch.Tensor) -> np.ndarray:
    return np.nanmedian(x.numpy().astype(np.float64), axis=0)


def _same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    """Equal up to float32 rounding of each row's prediction (the plain path's own rounding
    moves with the batch it runs in), with NaN/inf in the same places (NaN == NaN)."""
    with np.errstate(invalid="ignore"):
        scale = np.maximum(1.0, np.nan_to_num(np.abs(want[1]), posinf=1.0))
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(np.isfinite(g), np.isfinite(w))
        s = scale if g.ndim == 1 else scale[:, None]
        np.testing.assert_allclose(g / s, w / s, rtol=1e-5, atol=1e-6)


def test_sequential_starting_with_linear_takes_the_rank1_path() -> None:
    fwd = _Forward(_mlp())
    assert fwd.head is not None and fwd.head.weight.shape == (16, F)
    assert _Forward(nn.Sequential(nn.Linear(F, 1))).head is not None  # nothing after it


class _Sub(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x * 2)


def _hooked() -> nn.Sequential:
    m = _mlp()
    m[0].register_forward_hook(lambda mod, inp, out: out * 0.5)
    return m


@pytest.mark.parametrize(
    "model",
    [
        lambda: nn.Sequential(nn.Tanh(), nn.Linear(F, 1)),  # first op is not the Linear
        lambda: _Sub(nn.Linear(F, 1)),  # a subclass may compute something else
        _hooked,  # a hook changes the first layer's output
        lambda: _mlp().double(),  # float64 weights: the plain path feeds float32 rows
        lambda: nn.Sequential(nn.Linear(F, 16), nn.ReLU(), nn.Linear(16, 1)).to(torch.float16),
    ],
)
def test_unverifiable_models_take_the_plain_path(model: object) -> None:
    assert _Forward(model()).head is None  # type: ignore[operator]


def test_hooked_model_keeps_its_hook() -> None:
    m, x = _hooked(), _rows()
    b = _base(x)
    got = _attributions(_Forward(m), x, b, 64)
    with torch.no_grad():
        p = m(x)[:, 0].double().numpy()
    np.testing.assert_allclose(got[1], p, rtol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 7, 61, 100, 4096])
@pytest.mark.parametrize(
    "model", [_mlp, lambda: _mlp(bias=False), lambda: _mlp(act=nn.ReLU, depth=3)]
)
def test_rank1_equals_plain_path(batch_size: int, model: object) -> None:
    m = model()  # type: ignore[operator]
    x = _rows()
    fwd = _Forward(m)
    assert fwd.head is not None
    _same(_attributions(fwd, x, _base(x), batch_size), _attributions_plain(fwd, x, _base(x), 64))


def test_single_linear_is_exactly_w_times_distance() -> None:
    m = nn.Sequential(nn.Linear(F, 1))
    x = _rows(200)
    b = _base(x)
    a, _ = _attributions(_Forward(m), x, b, 4096)
    w = m[0].weight.detach().double().numpy()[0]
    np.testing.assert_allclose(a, (x.numpy() - b) * w, rtol=1e-5, atol=1e-6)


def test_nan_and_inf_rows_match_the_plain_path() -> None:
    x = _rows(80)
    x[3, 0] = math.nan
    x[10, 4] = math.inf
    x[11, 4] = -math.inf
    x[12, [1, 2]] = math.nan
    x[20, 5] = 3e38  # finite, but the rank-1 update overflows where the plain path may not
    b = _base(x)
    for m in (_mlp(), _mlp(act=nn.ReLU, depth=2)):
        fwd = _Forward(m)
        got = _attributions(fwd, x, b, 32)
        want = _attributions_plain(fwd, x, b, 32)
        _same(got, want)
        assert not np.isfinite(got[0][[3, 12]]).any()  # a NaN input: NaN attributions
        # ablating a feature that is inf replaces it (a finite difference where tanh saturates
        # the prediction), where the rank-1 update would give inf - inf = NaN
        if isinstance(m[1], nn.Tanh):
            assert np.isfinite(got[0][10, 4]) and np.isfinite(got[1][10])


def test_public_results_equal_the_plain_paths() -> None:
    """The same model as an opaque callable takes the plain path: identical results."""
    m = _mlp(act=nn.ReLU, depth=2)
    xc, xa = _rows(3000, 1).numpy(), _rows(3000, 2).numpy()
    xa[:, 2] *= 3.0
    xc[:7, 1] = np.nan  # the median baseline comes from the finite values
    plain = lambda t: m(t)  # noqa: E731
    for kw in ({"baseline": "median"}, {"baseline": "mean"}, {"baseline": np.full(F, 0.25)}):
        r1 = ablation_importance(m, xc, n_bootstrap=50, **kw)
        r0 = ablation_importance(plain, xc, n_bootstrap=50, **kw)
        np.testing.assert_allclose(r1.importance, r0.importance, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(r1.mean_attribution, r0.mean_attribution, atol=1e-6)
        assert r1.n_nonfinite_outputs == r0.n_nonfinite_outputs == 7
        assert r1.top(3) == r0.top(3)
    s1 = importance_shift(m, xc, xa, sample_rows=1024, n_bootstrap=50)
    s0 = importance_shift(plain, xc, xa, sample_rows=1024, n_bootstrap=50)
    np.testing.assert_allclose(s1.shift, s0.shift, rtol=1e-5, atol=1e-7)
    assert s1.top(3) == s0.top(3)


def test_width_mismatch_is_left_to_the_model() -> None:
    m = nn.Sequential(nn.Linear(F + 1, 1))
    with pytest.raises(RuntimeError):
        ablation_importance(m, _rows().numpy(), n_bootstrap=0)


def test_outlier_rows_are_recomputed_and_only_they() -> None:
    """A feature 1e5 times its spread dominates the first layer; setting it back to its
    baseline leaves a first-layer output that is mostly cancellation in the rank-1 update
    (off by ~eps * 1e5 per unit), so that row takes the plain path; ordinary rows do not."""
    m, x = _mlp(), _rows(200, 3)
    x[30, 6] = 1e5
    x[31, 2] = -3e4
    b = _base(x)
    head = _Forward(m).head
    assert head is not None
    a_fast, _, redo = _attributions_rank1(head, x, b, 4096)
    assert torch.nonzero(redo)[:, 0].tolist() == [30, 31]
    want = _attributions_plain(_Forward(m), x, b, 4096)
    assert abs(float(a_fast[6, 30]) - want[0][30, 6]) > 1e-5  # the update alone is off
    _same(_attributions(_Forward(m), x, b, 4096), want)


class _Skip(nn.Module):
    """Uses its input twice (a skip connection): the first layer is not all of x's use."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(F, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)[:, 0] + x[:, 0]


def _export(m: nn.Module, dynamic: bool = True) -> torch.export.ExportedProgram:
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic else None
    return torch.export.export(m.eval(), (torch.zeros(4, F),), dynamic_shapes=shapes)


def test_exported_program_takes_the_rank1_path_and_matches() -> None:
    ep = _export(_mlp(act=nn.ReLU, depth=2))
    fwd = _Forward(ep)
    assert fwd.head is not None
    x = _rows(300)
    x[5, 1] = math.nan
    b = _base(x)
    _same(_attributions(fwd, x, b, 128), _attributions_plain(fwd, x, b, 128))


@pytest.mark.parametrize(
    ("model", "dynamic"),
    [
        (_mlp, False),  # static batch: padded chunks, plain path
        (_Skip, True),  # the input is used past the first layer
        (lambda: nn.Sequential(nn.Tanh(), nn.Linear(F, 1)), True),
    ],
)
def test_exported_programs_it_cannot_split_take_the_plain_path(
    model: object, dynamic: bool
) -> None:
    m = model()  # type: ignore[operator]
    ep = _export(m, dynamic)
    assert _Forward(ep).head is None
    x = _rows(50).numpy()
    res = ablation_importance(ep, x, n_bootstrap=0, batch_size=64)
    ref = ablation_importance(lambda t: m(t), x, n_bootstrap=0, batch_size=64)
    np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-7)


def test_a_split_that_does_not_reproduce_the_model_is_refused() -> None:
    from hawknb.kernels.attribution import _head_matches

    m = _mlp()
    head = _Forward(m).head
    assert head is not None and _head_matches(head, m)
    assert not _head_matches(head, lambda t: m(t) + 1e-3)  # a different model
    assert not _head_matches(head, lambda t: m(t)[:2])  # a wrong shape
    assert not _head_matches(head, lambda t: 1 / 0)  # a model that fails
