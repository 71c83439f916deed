"""Feature ranking when the inputs that moved push the model into saturation: the features
that did not move lose importance too (an interaction, one program scores both windows), and
must not be named as responsible."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import torch

from hawknb.kernels.features import own_change, rank_features
from hawknb.workspace import contract as c

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
#: moved: the break (a big weight, and a small one); held: large weights, values unchanged
MOVED, MOVED_SMALL, HELD = "a_moved", "b_moved", ("c_held", "d_held", "e_held", "f_held")
NAMES = [MOVED, MOVED_SMALL, *HELD]
WEIGHTS = [3.0, 0.6, 1.5, -1.5, 1.5, -1.5]


class Saturating(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x @ torch.tensor(WEIGHTS, dtype=x.dtype))


def _serving(n: int = 3000, hours: int = 24, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    secs = np.sort(rng.uniform(0, hours * 3600, n))
    x = rng.normal(size=(n, len(NAMES))).astype(np.float32)
    after = secs >= hours * 3600 / 2
    x[after, 0] += 2.5  # into the sigmoid's flat part: every other feature matters less
    x[after, 1] *= 0.3  # a count that shrank
    with torch.no_grad():
        pred = Saturating()(torch.from_numpy(x)).double().numpy()
    ts = T0 + pl.Series(secs) * dt.timedelta(seconds=1)
    return pl.DataFrame(
        {
            c.TS: ts,
            c.MODEL: "m",
            c.EXPERIMENT: "e",
            c.SNAPSHOT: "s",
            c.PREDICTION: pred,
            **{name: x[:, j] for j, name in enumerate(NAMES)},
        }
    )


def test_features_whose_values_held_are_not_responsible_for_the_shift():
    onset = T0 + dt.timedelta(hours=12)
    r = rank_features(
        _serving(),
        model="m",
        feature_names=NAMES,
        onset=onset,
        anomaly=(onset, onset + dt.timedelta(hours=12)),
        program=Saturating(),
    )
    t = r.table
    assert set(r.top(2)) == {MOVED, MOVED_SMALL}
    held = t.filter(pl.col("feature").is_in(HELD))
    # their importance did move (the interaction is real) ...
    assert (held["importance_shift"].abs() > 0.01).all()
    # ... but nothing of it is theirs
    assert (held["confidence"] == 0).all()
    assert held["explained_share"].max() < 0.05


def test_own_change_is_zero_for_noise_and_one_for_a_clear_move():
    n = 400
    ks = np.array([0.02, 0.05, 0.3, 0.0, 0.0])
    d_null = np.array([0.0, 0.0, 0.0, 0.01, 0.4])
    rate = np.array([0.0, 0.0, 0.0, 0.01, 0.2])
    g = own_change(ks, d_null, rate, n, n)
    assert g[0] == 0 and g[1] == 0  # sqrt(200) * 0.05 = 0.7: sampling noise
    assert g[2] == 1  # 4.2 noise units
    assert g[3] == 0 and g[4] == 1  # 1% more nulls is noise, 40% is not
    # the same distance on 10x the rows is surer
    assert own_change(np.array([0.08]), np.zeros(1), np.zeros(1), 4000, 4000)[0] == 1
    assert own_change(np.array([0.08]), np.zeros(1), np.zeros(1), 100, 100)[0] == 0
    # NaN distances (a feature without finite values) count as no move
    assert own_change(np.array([np.nan]), np.array([np.nan]), np.zeros(1), n, n)[0] == 0
