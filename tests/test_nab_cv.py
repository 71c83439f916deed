"""nab_score --cv: folds inside the tune half, threshold chosen on one fold, other fold scored."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.nab_score import (
    cross_validate,
    cv_fold,
    cv_folds,
    loss_breakdown,
    noise_families,
)
from benchmarks.nab_scorer import CostMatrix, score_corpus
from hawknb.kernels.anomaly import anomaly_scores

STD = CostMatrix(tp=1.0, fp=0.11, fn=1.0)
N = 1000
NAMES = [f"cat/f{i}.csv" for i in range(12)]
WINS = {k: [(500, 549)] for k in NAMES}


def test_folds_partition_the_files_and_do_not_depend_on_order():
    a, b = cv_folds(NAMES)
    assert sorted(a + b) == sorted(NAMES) and not set(a) & set(b)
    assert a and b
    assert cv_folds(NAMES[::-1]) == (a[::-1], b[::-1])
    assert [cv_fold(k, 1) for k in NAMES] != [cv_fold(k) for k in NAMES]  # salts differ


def test_perfect_scores_transfer_and_a_fold_specific_cut_does_not():
    perfect = {k: np.zeros(N) for k in NAMES}
    for k in NAMES:
        perfect[k][500] = 1.0
    r = cross_validate(perfect, WINS, STD)
    assert r.held == pytest.approx((100.0, 100.0))
    # fold 0 hits its windows at score 0.6 and has false alarms at 0.55; fold 1 hits its
    # windows at 0.52 only: each fold's own optimum misses the other fold's windows
    f0, f1 = cv_folds(NAMES)
    scores = {k: np.zeros(N) for k in NAMES}
    for k in f0:
        scores[k][500] = 0.6
        scores[k][[300, 400, 700]] = 0.55
    for k in f1:
        scores[k][500] = 0.52
    r = cross_validate(scores, WINS, STD)
    assert r.fit[0] == pytest.approx(100.0) and r.fit[1] == pytest.approx(100.0)
    assert r.held[0] < 100.0 and r.held[1] < 50.0  # fold 1 at fold 0's cut (0.6) finds nothing
    own = score_corpus({k: scores[k] for k in f1}, {k: WINS[k] for k in f1}, STD)
    assert r.score < own.normalized


def test_loss_breakdown_adds_up_to_the_gap_to_perfect():
    # one early hit, one late hit, two missed windows, false positives before and after
    scores = {k: np.zeros(N) for k in NAMES[:4]}
    wins = {k: WINS[k] for k in NAMES[:4]}
    scores[NAMES[0]][500] = 0.9  # first row of the window: nearly the full reward
    scores[NAMES[1]][549] = 0.9  # last row: about half of it
    scores[NAMES[2]][[200, 560]] = 0.9  # misses its window, two false positives
    cs = score_corpus(scores, wins, STD, threshold=0.5)
    lb = loss_breakdown(scores, wins, STD, 0.5)
    assert lb.missed == 2 and lb.miss_cost == pytest.approx(4.0)
    assert 0.0 < lb.late_cost < 1.0 and lb.fp_cost > STD.fp  # -1 before any window, less after
    assert lb.total == pytest.approx(cs.perfect - cs.raw)


def test_noise_families_are_anomaly_free_and_a_clean_cycle_draws_no_alarm():
    fam = noise_families(np.random.default_rng(0), n=2000)
    assert all(x.shape == (2000,) and np.isfinite(x).all() for x in fam.values())
    s = anomaly_scores(fam["daily sine"], causal=True)
    assert (s[300:] >= 0.5).sum() == 0
    # and the count does see alarms: a spike in the same cycle is flagged
    spiked = fam["daily sine"].copy()
    spiked[1500] += 30.0
    assert (anomaly_scores(spiked, causal=True)[1500:] >= 0.5).sum() >= 1
