"""nab_score --cv: folds inside the tune half, threshold chosen on one fold, other fold scored."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.nab_score import cross_validate, cv_fold, cv_folds
from benchmarks.nab_scorer import CostMatrix, score_corpus

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
