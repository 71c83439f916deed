"""Causal detector, flat-run novelty: one value repeated for longer than ever before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hawknb.kernels.anomaly_causal import CausalConfig, causal_scores
from hawknb.kernels.anomaly_flat import flat_novelty

OFF = CausalConfig(flat_min_run=0)


def _sparse_writes(seed: int, n: int = 3000) -> np.ndarray:
    """A disk-write-like metric: 0 most of the time, a burst in about one row of ten."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.1, rng.exponential(100.0, n) + 1.0, 0.0)


def _longest_run(x: np.ndarray) -> int:
    cuts = np.flatnonzero(np.r_[True, x[1:] != x[:-1], True])
    return int(np.diff(cuts).max())


def test_known_rows():
    # runs: 0 x 3 (rows 0-2), 1, 0 x 5 (rows 4-8), 2, 0 x 4 (rows 10-13)
    x = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0], dtype=float)
    got = np.flatnonzero(flat_novelty(x, min_run=2, memory=1))
    # run 1 passes min_run at row 1; the 5-run passes the 3-run at its 4th row (row 7);
    # the last run (4 rows) never passes 5
    assert got.tolist() == [1, 7]
    # min_run holds back the first run; the 5-run then passes the old record 3 at row 7
    assert np.flatnonzero(flat_novelty(x, min_run=4, memory=1)).tolist() == [7]


@pytest.mark.parametrize("seed", range(4))
def test_a_stuck_metric_fires_once_where_its_run_becomes_the_longest(seed):
    """The stuck value is the most ordinary one (0), so no other signal sees it."""
    x = _sparse_writes(seed)
    record = _longest_run(x)
    stuck = np.r_[x, 1.0, np.zeros(400)]
    at = x.size + 1 + record  # the stretch's (record + 1)-th row
    flags = np.flatnonzero(flat_novelty(stuck))
    assert flags[flags > x.size].tolist() == [at]
    on, off = causal_scores(stuck), causal_scores(stuck, OFF)
    assert on[at] >= 0.5
    assert off[x.size + 1 :].max() < 0.5  # without the signal the stretch raises nothing


def test_causal_appending_rows_changes_no_earlier_flag():
    x = np.r_[_sparse_writes(7, 2500), np.zeros(300), _sparse_writes(8, 500)]
    full = flat_novelty(x)
    for cut in (300, 1200, 2510, 2600, 2700, 2900, 3100):
        assert np.array_equal(flat_novelty(x[:cut]), full[:cut]), cut


def test_a_young_series_needs_a_clearer_record():
    """While fewer than `memory` rows are seen the longest earlier run is scaled up."""
    head = np.r_[np.zeros(30), np.arange(1.0, 171.0)]  # a 30-row run, then 170 distinct values
    young = np.r_[head, np.zeros(60)]  # a 60-row run from row 200: 60 < 30 * (1000/259)^2
    assert np.flatnonzero(flat_novelty(young)).tolist() == [19]  # only the first run's
    old = np.r_[np.zeros(30), np.arange(1.0, 2001.0), np.zeros(60)]  # the same run at row 2030
    assert np.flatnonzero(flat_novelty(old)).tolist() == [19, 2030 + 31 - 1]  # 31 > 30


def test_continuous_noise_has_no_runs_and_a_constant_series_fires_only_in_the_warmup():
    rng = np.random.default_rng(0)
    assert not flat_novelty(rng.normal(size=5000)).any()
    assert np.flatnonzero(flat_novelty(np.ones(500))).tolist() == [19]  # min_run's row
    assert causal_scores(np.ones(500)).max() == 0.0  # ... inside the warm-up


def test_missing_values_are_no_flat_run():
    """A gap in the data (NaN, carried forward for the other signals) is not a stuck metric."""
    x = _sparse_writes(3)
    gap = np.r_[x, np.full(400, np.nan), x[:200]]
    assert not flat_novelty(gap)[x.size : x.size + 400].any()
    rows = slice(x.size, x.size + 400)
    assert np.array_equal(causal_scores(gap)[rows], causal_scores(gap, OFF)[rows])


def test_flat_min_run_zero_turns_the_signal_off():
    x = np.r_[_sparse_writes(1), np.zeros(400)]
    assert causal_scores(x).max() >= 0.5
    assert not np.array_equal(causal_scores(x), causal_scores(x, OFF))
    with pytest.raises(ValueError):
        flat_novelty(x, min_run=0)
    assert replace(CausalConfig(), flat_min_run=0).flat_min_run == 0
