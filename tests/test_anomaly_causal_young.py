"""Causal detector on young (short) series: the reference and the context bar at every age."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hawknb.kernels.anomaly_causal import CausalConfig, causal_scores
from hawknb.kernels.anomaly_context import context_novelty

SEEDS = range(8)


def _short_sine_with_flat_half_period(seed: int, n: int = 900, at: int = 700) -> np.ndarray:
    """A 900-row series (shorter than the 1000-row memory) whose curve stops at row ``at``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.01, n)
    x[at : at + 24] = rng.normal(0, 0.01, 24)
    return x


PAIRS = (2, 3, 4, 5)  # with contexts of 2 levels: the detector's default before issue 9 round 5


def test_a_short_series_gets_context_alarms_a_fixed_memory_never_gives_it():
    """With pairs of levels checked: the default (3-5 levels) no longer sees this, see below."""
    hits = 0
    for seed in SEEDS:
        x = _short_sine_with_flat_half_period(seed)
        young = np.flatnonzero(context_novelty(x, orders=PAIRS, young_share=0.8))
        assert not context_novelty(x, orders=PAIRS, young_share=0.0).any()  # never 1000 quiet rows
        assert not np.any((young > 100) & ((young < 700) | (young > 725)))  # nothing else
        hits += bool(np.any((young >= 700) & (young <= 725)))
    assert hits >= len(SEEDS) - 2  # a stray new context of the noise may still block one


def test_without_pairs_of_levels_the_short_flat_stretch_is_missed():
    """The price of the default orders (3, 4, 5), kept visible: in a young noisy sine, new
    3-level contexts (noise at slice edges) keep appearing, so they never fall quiet and the
    flat stretch is not context news; pairs of levels fall quiet and catch it. Dropping pairs
    removed chance alarms on iid noise and one false alarm on each of 5 NAB tune files."""
    for seed in SEEDS:
        fire = context_novelty(_short_sine_with_flat_half_period(seed), young_share=0.8)
        assert not fire[100:].any()


def test_young_share_is_causal_and_a_long_series_keeps_the_fixed_memory():
    x = _short_sine_with_flat_half_period(0, n=3000, at=2500)
    full = context_novelty(x, young_share=0.8)
    for cut in (400, 900, 1300, 2510):
        np.testing.assert_array_equal(context_novelty(x[:cut], young_share=0.8), full[:cut])
    # past 1250 rows the share asks for more than ``memory`` rows: the fixed rule applies
    np.testing.assert_array_equal(full[1250:], context_novelty(x)[1250:])


@pytest.mark.parametrize("share", [-0.1, 1.0, 2.0])
def test_young_share_bad_input(share):
    with pytest.raises(ValueError, match="young_share"):
        context_novelty(np.arange(50.0), young_share=share)


def _noise_with_spikes(seed: int, warm_spike: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 600)
    if warm_spike:
        x[50] += 12.0  # inside the 100-row warm-up: does not score, but is seen
    x[300] += 9.0
    return x


@pytest.mark.parametrize("seed", range(4))
def test_warmup_rows_set_the_reference_of_a_young_series(seed):
    """A spike during the warm-up says how large this series' spikes are."""
    cfg = CausalConfig()
    lone = causal_scores(_noise_with_spikes(seed, warm_spike=False), cfg)
    assert lone[300] >= 0.5  # the first large spike the detector may report
    after = causal_scores(_noise_with_spikes(seed, warm_spike=True), cfg)
    assert after[300] < 0.5  # smaller than one already seen: no record
    assert after[:100].max() == 0.0  # the warm-up itself never scores
    # a spike larger than the warm-up one is still news
    bigger = _noise_with_spikes(seed, warm_spike=True)
    bigger[300] += 10.0
    assert causal_scores(bigger, cfg)[300] >= 0.5


def test_the_first_rows_of_a_signal_do_not_set_the_reference():
    """Rows whose z rests on fewer than 2 x min_samples rows are too noisy to be the bar."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 600)
    x[25] += 12.0  # z from 25 rows of history
    x[300] += 9.0
    cfg = CausalConfig()
    assert causal_scores(x, cfg)[300] >= 0.5
    assert causal_scores(x, replace(cfg, min_samples=10))[300] < 0.5  # now a seen row
