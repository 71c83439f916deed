"""Context novelty: a never-seen sequence of coarse levels, as a record over ``memory`` rows."""

from __future__ import annotations

import numpy as np
import pytest

from hawknb.kernels.anomaly_causal import CausalConfig, causal_scores
from hawknb.kernels.anomaly_context import context_novelty, range_levels


def test_range_levels_known_values_and_causal():
    x = np.array([5.0, 0.0, 10.0, 5.0, 9.9, 10.0, -1.0, 2.5])
    # row 3: 5 in [0, 10] -> slice 2 of 4 (level 3); row 4: 9.9 -> slice 3 (level 4);
    # row 5: at the past max -> level 5; row 6: below the past min -> level 0
    assert range_levels(x, 4).tolist() == [0, 0, 5, 3, 4, 5, 0, 2]
    for cut in range(1, x.size):
        assert range_levels(x[:cut], 4).tolist() == range_levels(x, 4)[:cut].tolist()


def _sine_with_flat_half_period(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(4000)
    x = np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.02, t.size)
    x[2500:2524] = rng.normal(0, 0.02, 24)  # the curve stops half-way, inside its usual range
    return x


@pytest.mark.parametrize("seed", range(3))
def test_a_new_shape_inside_the_usual_range_is_context_novel(seed):
    x = _sine_with_flat_half_period(seed)
    fire = np.flatnonzero(context_novelty(x))
    assert fire.size and 2500 <= fire[fire >= 1100][0] < 2524  # at the flat stretch
    assert not np.any((fire >= 1100) & (fire < 2500))  # a known repertoire: nothing new
    # no single value is unusual: without the seasonal signal only context novelty sees it
    only = dict(season_weight=0.0, spatial_tol=-1.0)
    on = causal_scores(x, CausalConfig(**only))
    off = causal_scores(x, CausalConfig(context_bins=0, **only))
    assert on[2500:2524].max() >= 0.5
    assert off[2500:2524].max() < 0.5


def test_novelty_within_memory_does_not_fire_again():
    # a random walk keeps producing new contexts: they are news only when the recent past had none
    x = np.cumsum(np.random.default_rng(0).normal(size=3000))
    assert context_novelty(x, memory=50).sum() > context_novelty(x, memory=500).sum()
    assert not context_novelty(x, memory=3000)[100:].any()  # never a quiet stretch this long


def test_context_novelty_is_causal():
    x = _sine_with_flat_half_period(0)
    full = context_novelty(x)
    for cut in (150, 1000, 2510, 3999):
        np.testing.assert_array_equal(context_novelty(x[:cut]), full[:cut])


def test_context_novelty_bad_input():
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="bins"):
        range_levels(x, 0)
    with pytest.raises(ValueError, match="orders"):
        context_novelty(x, orders=())
    with pytest.raises(ValueError, match="overflow"):
        context_novelty(x, bins=8, orders=(40,))
    with pytest.raises(ValueError, match="memory"):
        context_novelty(x, memory=0)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 6])
def test_series_shorter_than_the_longest_context(n):
    """Found by the fuzz profile: three rows and contexts of up to five levels."""
    x = np.arange(n, dtype=float)
    fire = context_novelty(x, warmup=0)
    assert fire.shape == (n,)
    long = context_novelty(np.arange(n + 10, dtype=float), warmup=0)
    assert (fire == long[:n]).all()  # causal: the short series is the long one's prefix


def test_noise_raises_no_context_alarm_that_pairs_of_levels_would():
    """Order 2 (a never-seen jump between two level slices) fires on iid noise; 3-5 do not."""
    pairs = quiet = 0
    for seed in range(16):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=4000) if seed % 2 else rng.standard_t(3, size=4000)
        pairs += int(context_novelty(x, orders=(2,), young_share=0.8)[200:].sum())
        quiet += int(context_novelty(x, young_share=0.8)[200:].sum())
    assert pairs >= 3  # the chance alarms the default no longer raises
    assert quiet == 0
    assert CausalConfig().context_orders == (3, 4, 5)
