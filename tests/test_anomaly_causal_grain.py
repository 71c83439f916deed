"""Causal detector: record ratios on a coarse grid (same firings, no chance ranking)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hawknb.kernels.anomaly_causal import CausalConfig, _coarsen, causal_scores


def _noise_with_events(seed: int, n: int = 4000) -> np.ndarray:
    """Gaussian noise with spikes and a level shift of known sizes (records of many strengths)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    for at, size in ((1200, 6.0), (1900, 9.0), (2600, 15.0)):
        x[at] += size
    x[3200:] += 5.0
    return x


def test_coarsen_rounds_only_records_down_to_the_grid():
    r = np.array([0.2, 0.999, 1.0, 1.04, 1.1, 1.25, 1.5, 3.07])
    out = _coarsen(r, 0.1)
    np.testing.assert_allclose(out, [0.2, 0.999, 1.0, 1.0, 1.1, 1.2, 1.5, 3.0], atol=1e-9)
    assert np.all(out[r > 1.0] > 0.999)  # a record stays a record


@pytest.mark.parametrize("seed", range(4))
def test_grain_changes_no_firing_only_the_scores_of_records(seed):
    x = _noise_with_events(seed)
    fine = causal_scores(x, replace(CausalConfig(), record_grain=0.0))
    coarse = causal_scores(x, replace(CausalConfig(), record_grain=0.1))
    np.testing.assert_array_equal(fine >= 0.5, coarse >= 0.5)
    below = fine < 0.5
    np.testing.assert_array_equal(fine[below], coarse[below])
    fired = coarse >= 0.5
    for at in (1200, 1900, 2600):  # the known spikes fire (or an alarm just before silences them)
        assert fired[at - 100 : at + 1].any()
    ratio = coarse[fired] / (1.0 - coarse[fired])
    steps = (ratio - 1.0) / 0.1
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)  # only grid values
    assert len(np.unique(np.round(coarse[fired], 9))) < fired.sum()  # barely-records now tie


def test_grain_zero_keeps_the_graded_scores():
    x = _noise_with_events(0)
    fine = causal_scores(x, replace(CausalConfig(), record_grain=0.0))
    fired = fine[fine >= 0.5]
    ratio = fired / (1.0 - fired)
    steps = (ratio - 1.0) / 0.1
    assert not np.allclose(steps, np.round(steps), atol=1e-6)


def test_negative_grain_is_refused():
    with pytest.raises(ValueError, match="record_grain"):
        causal_scores(np.zeros(300), replace(CausalConfig(), record_grain=-0.1))
