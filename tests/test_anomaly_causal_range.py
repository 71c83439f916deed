"""Causal detector, range novelty: leaving the seen range is news only for a jump or a drift."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hawknb.kernels.anomaly_causal import CausalConfig, _drift_or_jump, causal_scores

PROBATION = 600  # NAB scores a 4000-row file from about here on
ONLY_RANGE = CausalConfig(context_bins=0, season_weight=0.0)
UNGATED = replace(ONLY_RANGE, spatial_edge=1.0)


def _range_alarms(x: np.ndarray, cfg: CausalConfig, start: int) -> int:
    return int((causal_scores(x, cfg)[start:] >= 0.5).sum())


def test_drift_or_jump_known_values():
    cfg = CausalConfig(edge_rows=3, spatial_edge=0.2, z_min=4.0)
    # past range [0, 10] from row 2 on; the median of the 3 rows before row 3 is 5
    x = np.array([0.0, 10.0, 5.0, 11.0, 9.0, 9.5, 12.0])
    no_season = np.zeros(x.size)
    # scale 1: row 3 is 6 scales above the median 5 of [0, 10, 5]: a jump
    assert _drift_or_jump(x, np.ones(x.size), no_season, cfg)[3]
    wide = np.full(x.size, 10.0)  # scale 10: 0.6 scales, and the median 5 is mid-range
    assert not _drift_or_jump(x, wide, no_season, cfg)[3]
    assert _drift_or_jump(x, wide, np.full(x.size, 4.0), cfg)[3]  # ... unless off-season
    # row 6: the median 9.5 of [11, 9, 9.5] lies at 0.86 of the range [0, 11]: a drift
    assert _drift_or_jump(x, wide, no_season, cfg)[6]
    # a row below the range reads the position from the other end
    low = np.array([0.0, 10.0, 5.0, 9.0, 9.5, 9.0, -1.0])
    assert not _drift_or_jump(low, wide, np.zeros(low.size), cfg)[6]
    assert _drift_or_jump(x, wide, no_season, replace(cfg, spatial_edge=1.0)).all()


def test_chance_extremes_of_noise_raise_few_range_alarms_and_the_gate_is_why():
    """iid noise sets a new extreme now and then; that is not an anomaly."""
    series = [np.random.default_rng(s).normal(size=4000) for s in range(4)]
    gated = sum(_range_alarms(x, ONLY_RANGE, PROBATION) for x in series)
    ungated = sum(_range_alarms(x, UNGATED, PROBATION) for x in series)
    assert gated <= 1 < 4 <= ungated  # about 2 per series without the gate


@pytest.mark.parametrize("seed", range(3))
def test_a_slow_drift_out_of_the_range_still_fires_while_drifting(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 4000)
    x[2000:] += np.linspace(0, 6, 2000)  # 3 sd per 1000 rows: no single row is a spike
    fire = np.flatnonzero(causal_scores(x, ONLY_RANGE)[2000:] >= 0.5)
    assert fire.size and fire[0] < 1500


@pytest.mark.parametrize("seed", range(3))
def test_a_sudden_jump_beyond_the_range_still_fires_at_once(seed):
    x = np.random.default_rng(seed).normal(size=4000)
    x[3000:] += 8.0
    assert causal_scores(x, replace(ONLY_RANGE, suppress=0))[3000] >= 0.5


def test_the_noise_of_a_new_plateau_raises_no_range_alarm_after_the_shift():
    """After a level shift the new plateau's chance highs are no news, though the point
    signal's 2000-row baseline still calls every plateau row a 3-sd outlier."""
    gated = ungated = 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        x = np.r_[rng.normal(0, 1, 2000), rng.normal(3, 1, 2000)]
        assert causal_scores(x, ONLY_RANGE)[2000:2100].max() >= 0.5  # the shift itself
        # range-novel rows score 0.6; a bare record of the other signals about 0.5
        gated += int((causal_scores(x, ONLY_RANGE)[2100:] >= 0.55).sum())
        ungated += int((causal_scores(x, UNGATED)[2100:] >= 0.55).sum())
    assert gated == 0 < ungated
