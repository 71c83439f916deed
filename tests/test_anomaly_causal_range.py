"""Causal detector, range novelty: leaving the seen range is news only for a drift or an outlier."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hawknb.kernels.anomaly_causal import CausalConfig, _drift_or_outlier, causal_scores

PROBATION = 600  # NAB scores a 4000-row file from about here on
ONLY_RANGE = CausalConfig(context_bins=0, season_weight=0.0)


def test_drift_or_outlier_known_values():
    cfg = CausalConfig(edge_rows=3, spatial_edge=0.2, z_min=4.0)
    # past range [0, 10] from row 2 on; rows 3-5 probe the upper edge
    x = np.array([0.0, 10.0, 5.0, 11.0, 9.0, 9.5, 12.0])
    z = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    got = _drift_or_outlier(x, z, cfg)
    # row 3: median of [0, 10, 5] = 5, mid-range -> a lone excursion, z 1 -> not news
    # row 6: median of [11, 9, 9.5] = 9.5 of [0, 11] -> 0.86 >= 0.8, a drift -> news
    assert not got[3] and got[6]
    assert _drift_or_outlier(x, np.full(x.size, 4.0), cfg)[3]  # a clear outlier always is


@pytest.mark.parametrize("seed", range(4))
def test_chance_extremes_of_noise_raise_no_range_alarm(seed):
    """iid noise sets a new extreme now and then; that is not an anomaly."""
    x = np.random.default_rng(seed).normal(size=4000)
    gated = causal_scores(x, ONLY_RANGE)
    assert (gated[PROBATION:] >= 0.5).sum() == 0


def test_without_the_gate_noise_does_raise_range_alarms():
    """The counterpart of the test above: the gate is what removes those alarms."""
    ungated = replace(ONLY_RANGE, spatial_edge=1.0)
    fired = sum(
        int(
            (
                causal_scores(np.random.default_rng(s).normal(size=4000), ungated)[PROBATION:]
                >= 0.5
            ).sum()
        )
        for s in range(4)
    )
    assert fired >= 3


@pytest.mark.parametrize("seed", range(3))
def test_a_slow_drift_out_of_the_range_still_fires_while_drifting(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 4000)
    x[2000:] += np.linspace(0, 6, 2000)  # 3 sd per 1000 rows: no single row is a spike
    s = causal_scores(x, ONLY_RANGE)
    fire = np.flatnonzero(s[2000:] >= 0.5)
    assert fire.size and fire[0] < 1500


@pytest.mark.parametrize("seed", range(3))
def test_a_sudden_jump_beyond_the_range_still_fires_at_once(seed):
    x = np.random.default_rng(seed).normal(size=4000)
    x[3000:] += 8.0
    assert causal_scores(x, ONLY_RANGE)[3000] >= 0.5
