"""Partial blow-ups found without an absolute cut-off, and the feature that triggers them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hawknb.kernels.activation_drivers import (
    RowMagnitudes,
    find_outlier_rows,
    rank_drivers,
    row_magnitudes,
)

N_FEAT = 40
TRIGGER = 7


class _Net(torch.nn.Module):
    def __init__(self, gain: float, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.hidden = torch.nn.Linear(N_FEAT, 16)
        self.out = torch.nn.Linear(16, 1)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.randn(16, N_FEAT, generator=g) * 0.2)
            self.out.weight.copy_(torch.randn(1, 16, generator=g) * 0.2)
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.hidden(x))
        # a finite blow-up (x50) on the rows where one feature exceeds a threshold
        gate = 1.0 + (self.gain - 1.0) * (x[:, TRIGGER : TRIGGER + 1] > 1.6).float()
        return torch.sigmoid(self.out(h * gate))


def _program(gain: float, seed: int = 0):
    x = torch.randn(8, N_FEAT)
    dims = {"x": {0: torch.export.Dim("batch")}}
    return torch.export.export(_Net(gain, seed), (x,), dynamic_shapes=dims)


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(3000, N_FEAT)).astype(np.float32)


def test_partial_blowup_rows_and_trigger_feature(batch):
    bad_prog, old_prog = _program(50.0), _program(1.0, seed=1)
    cur, ref = row_magnitudes(bad_prog, batch), row_magnitudes(old_prog, batch)
    out = find_outlier_rows(cur, ref)
    assert out is not None
    truth = batch[:, TRIGGER] > 1.6
    # the flagged rows are the triggered rows (a few % of traffic), not the whole batch
    assert 0.02 < out.bad_fraction < 0.1
    assert (out.bad & truth).sum() / truth.sum() > 0.8
    assert (out.bad & ~truth).sum() <= 0.05 * out.bad.sum()
    names = [f"f{i}" for i in range(N_FEAT)]
    drivers = rank_drivers(batch, out.bad, names)
    assert drivers[0].feature == f"f{TRIGGER}"
    assert drivers[0].direction == 1
    assert drivers[0].threshold == pytest.approx(1.6, abs=0.3)
    assert drivers[0].score > drivers[1].score + 0.3


def test_healthy_or_retrained_snapshot_has_no_outlier_rows(batch):
    # a benign retrain: every row moves a little, no minority blows up
    cur, ref = row_magnitudes(_program(1.0, seed=2), batch), row_magnitudes(_program(1.0), batch)
    assert find_outlier_rows(cur, ref) is None
    assert find_outlier_rows(cur) is None


class _Scaled(_Net):
    """Every row of the hidden layer blown up alike (a broken layer, not a trigger)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.hidden(x)) * self.gain
        return torch.sigmoid(self.out(h))


def test_whole_node_blowup_against_the_previous_snapshot(batch):
    x = torch.randn(8, N_FEAT)
    dims = {"x": {0: torch.export.Dim("batch")}}
    broken = torch.export.export(_Scaled(300.0, 0), (x,), dynamic_shapes=dims)
    cur, ref = row_magnitudes(broken, batch), row_magnitudes(_program(1.0), batch)
    # centred on its median row, a blow-up of every row alike shows no minority
    assert find_outlier_rows(cur) is None
    out = find_outlier_rows(cur, ref)
    assert out is not None and out.reference == "previous snapshot"
    assert out.bad_fraction > 0.9 and out.ratio > 8
    # the first node that blew up is the hidden layer's (or its relu / scale), not the head
    assert out.layer == "hidden" or out.node.startswith(("relu", "mul"))


def test_blowup_found_without_a_reference(batch):
    out = find_outlier_rows(row_magnitudes(_program(200.0), batch))
    assert out is not None
    assert out.reference == "healthy rows"
    assert out.ratio > 8


def test_bad_input():
    with pytest.raises(ValueError, match="line up"):
        rank_drivers(np.zeros((5, 3)), np.zeros(4, dtype=bool), ["a", "b", "c"])
    assert rank_drivers(np.zeros((5, 2)), np.zeros(5, dtype=bool), ["a", "b"]) == ()
    with pytest.raises(ValueError, match="non-empty"):
        row_magnitudes(_program(1.0), np.zeros((0, N_FEAT), dtype=np.float32))


def test_a_whole_node_blowup_before_the_minority_is_kept_as_the_first_bad_layer():
    """A bias blown up in layer 'a' makes every row large there; only the triggered 5% pass
    the next activation and stand out at 'b'. The minority names the trigger rows, the
    whole-node blow-up before it the first bad layer."""
    rng = np.random.default_rng(0)
    n = 400
    ref = np.abs(rng.normal(1.0, 0.1, (2, n))) + 0.5
    cur = ref.copy()
    cur[0] *= 100.0  # every row at 'a'
    hit = np.arange(n) < 20
    cur[1, hit] *= 50.0  # the triggered rows at 'b'
    current = RowMagnitudes(("n_a", "n_b"), ("a", "b"), cur)
    reference = RowMagnitudes(("n_a", "n_b"), ("a", "b"), ref)
    out = find_outlier_rows(current, reference)
    assert out is not None
    assert (out.node, out.layer) == ("n_b", "b")
    assert np.array_equal(out.bad, hit)
    assert (out.whole_node, out.whole_layer) == ("n_a", "a")
    # without the whole-node blow-up there is no earlier bad layer to report
    cur[0] = ref[0]
    alone = find_outlier_rows(RowMagnitudes(("n_a", "n_b"), ("a", "b"), cur), reference)
    assert alone is not None and alone.whole_layer is None


def test_tied_inputs_rank_the_same_in_any_row_order():
    """Count-like inputs tie often; tied values share their mean rank, so the AUC is the
    pairwise P(bad > good) + P(tie)/2 and the drivers do not depend on the rows' order."""
    from scipy.stats import rankdata

    from hawknb.kernels.activation_drivers import _auc, _average_ranks

    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(600, 6)).astype(np.float64)
    bad = rng.random(600) < 0.1
    x[bad, 2] += rng.integers(0, 2, size=int(bad.sum()))  # feature 2 drives them, with ties
    np.testing.assert_array_equal(_average_ranks(x), rankdata(x, axis=0))
    xb, xg = x[bad], x[~bad]
    pairwise = [
        np.mean(xb[:, j, None] > xg[None, :, j]) + 0.5 * np.mean(xb[:, j, None] == xg[None, :, j])
        for j in range(6)
    ]
    np.testing.assert_allclose(_auc(xb, xg), pairwise, rtol=1e-12)
    names = [f"n{j}" for j in range(6)]
    want = rank_drivers(x, bad, names)
    assert want[0].feature == "n2"
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(600)
        assert rank_drivers(x[perm], bad[perm], names) == want


def test_a_dozen_rows_show_a_whole_node_blowup_but_no_minority(batch):
    """A canary of a sampled log served a dozen rows: each of them measured against itself
    under the previous snapshot shows a whole-node blow-up (MIN_ROWS), while a minority needs
    MIN_MINORITY_ROWS to say what a typical row is."""
    from hawknb.kernels.activation_drivers import MIN_MINORITY_ROWS, MIN_ROWS

    few = batch[:12]
    assert MIN_ROWS <= few.shape[0] < MIN_MINORITY_ROWS
    x = torch.randn(8, N_FEAT)
    dims = {"x": {0: torch.export.Dim("batch")}}
    broken = torch.export.export(_Scaled(300.0, 0), (x,), dynamic_shapes=dims)
    out = find_outlier_rows(row_magnitudes(broken, few), row_magnitudes(_program(1.0), few))
    assert out is not None and out.bad_fraction > 0.9 and out.ratio > 8
    # the triggered minority of the partial blow-up: two rows of twelve made to trigger
    trig = few.copy()
    trig[:2, TRIGGER] = 3.0
    trig[2:, TRIGGER] = 0.0
    cur = row_magnitudes(_program(50.0), trig)
    ref = row_magnitudes(_program(1.0, seed=1), trig)
    assert find_outlier_rows(cur, ref) is None
    seen = find_outlier_rows(cur, ref, min_minority_rows=MIN_ROWS)
    assert seen is not None and seen.bad[:2].all() and not seen.bad[2:].any()
    assert find_outlier_rows(row_magnitudes(broken, few[: MIN_ROWS - 1]), None) is None
