"""Row-level snapshot comparison (kernels.snapshot_rows) on frames whose answer is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hawknb.kernels.snapshot_rows import compare_snapshot_rows

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ONSET = T0 + timedelta(days=2)
END = ONSET + timedelta(hours=6)


def _rows(rng, n, start, hours, model, exp, snap, pred, label_p=None, matured=1.0):
    ts = [start + timedelta(seconds=float(s)) for s in rng.uniform(0, hours * 3600, n)]
    p = pred(n)
    if label_p is None:
        label_p = p
    y = (rng.uniform(size=n) < label_p).astype(float)
    y = np.where(rng.uniform(size=n) < matured, y, np.nan)
    return pl.DataFrame(
        {
            "ts": ts,
            "model": model,
            "experiment": exp,
            "snapshot": snap,
            "prediction": p,
            "label": y,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    ).with_columns(pl.col("label").fill_nan(None))


def _healthy(rng):
    return lambda n: 1 / (1 + np.exp(-rng.normal(-2.0, 1.0, n)))


def _saturated(rng, share):
    healthy = _healthy(rng)

    def pred(n):
        p = healthy(n)
        bad = rng.uniform(size=n) < share
        return np.where(bad, np.where(rng.uniform(size=n) < 0.5, 0.0, 1.0), p)

    return pred


def _world(rng, canary_pred, canary_rows=40, benign_rows=300):
    """Two arms of one model; before the onset s-old serves both; at the onset a canary
    (s-canary) takes a few % of arm B and a benign retrain (s-benign) half of arm A."""
    parts = [
        _rows(rng, 3000, T0, 48, "m", "A", "s-old", _healthy(rng)),
        _rows(rng, 3000, T0, 48, "m", "B", "s-old", _healthy(rng)),
        _rows(rng, 300, ONSET, 6, "m", "A", "s-old", _healthy(rng)),
        _rows(rng, benign_rows, ONSET, 6, "m", "A", "s-benign", _healthy(rng)),
        _rows(rng, 600, ONSET, 6, "m", "B", "s-old", _healthy(rng)),
        _rows(rng, canary_rows, ONSET, 6, "m", "B", "s-canary", canary_pred),
    ]
    return pl.concat(parts).sort("ts")


def test_canary_on_one_arm_stands_out_and_benign_rollout_does_not():
    rng = np.random.default_rng(1)
    rows = _world(rng, _saturated(rng, 0.6))
    out = compare_snapshot_rows(rows, onset=ONSET, end=END)
    by = {r["snapshot"]: r for r in out.iter_rows(named=True)}
    assert set(by) == {"s-canary", "s-benign"}
    assert by["s-canary"]["experiment"] == "B"
    assert by["s-canary"]["reference"] == "same hours"
    assert by["s-canary"]["z"] > 8
    assert by["s-benign"]["z"] < 3
    assert by["s-canary"]["ks"] > by["s-benign"]["ks"]


def test_partial_blowup_of_a_full_cutover_against_the_rows_before():
    rng = np.random.default_rng(2)
    parts = [
        _rows(rng, 3000, T0, 48, "m", "A", "s-old", _healthy(rng)),
        _rows(rng, 800, ONSET, 6, "m", "A", "s-new", _saturated(rng, 0.06)),
    ]
    out = compare_snapshot_rows(pl.concat(parts).sort("ts"), onset=ONSET, end=END)
    row = out.row(0, named=True)
    assert row["snapshot"] == "s-new" and row["reference"] == "before"
    assert row["tail_share"] > row["tail_expected"] + 0.03
    assert row["z"] > 5


def _collapsed(rng, centre=0.12, width=0.01):
    """Predictions squeezed into a narrow band inside the healthy range (a saturated unit)."""
    return lambda n: rng.uniform(centre - width, centre + width, n)


def test_a_collapsed_canary_narrows_its_rank_spread_inside_the_tails():
    rng = np.random.default_rng(5)
    out = compare_snapshot_rows(_world(rng, _collapsed(rng), canary_rows=30), onset=ONSET, end=END)
    by = {r["snapshot"]: r for r in out.iter_rows(named=True)}
    canary, benign = by["s-canary"], by["s-benign"]
    assert canary["tail_z"] < 3  # every row inside the neighbours' central 98%
    assert canary["spread_ratio"] < 0.05
    assert canary["spread_z"] > 3.5
    assert 0.7 < benign["spread_ratio"] < 1.3
    assert abs(benign["spread_z"]) < 3


def test_rank_spread_is_indifferent_to_clumped_references():
    # half of every side's predictions are exactly 0.05 (a clump a raw spread would read as
    # a collapse of the whole distribution); the same distribution on both sides reads ~1
    rng = np.random.default_rng(6)
    healthy = _healthy(rng)

    def clumped(n):
        return np.where(rng.uniform(size=n) < 0.5, 0.05, healthy(n))

    parts = [
        _rows(rng, 3000, T0, 48, "m", "B", "s-old", clumped),
        _rows(rng, 600, ONSET, 6, "m", "B", "s-old", clumped),
        _rows(rng, 200, ONSET, 6, "m", "B", "s-new", clumped),
    ]
    row = compare_snapshot_rows(pl.concat(parts).sort("ts"), onset=ONSET, end=END).row(
        0, named=True
    )
    assert 0.7 < row["spread_ratio"] < 1.3
    assert abs(row["spread_z"]) < 3


def test_late_labels_only_matured_rows_enter_the_loss():
    rng = np.random.default_rng(3)
    # the canary's predictions look ordinary but are wrong: labels follow 3x its prediction
    wrong = _healthy(rng)
    parts = [
        _rows(rng, 3000, T0, 48, "m", "B", "s-old", _healthy(rng)),
        _rows(rng, 600, ONSET, 6, "m", "B", "s-old", _healthy(rng), matured=0.3),
    ]
    p = wrong(400)
    canary = _rows(rng, 400, ONSET, 6, "m", "B", "s-canary", lambda n: p, 1 - p, matured=0.3)
    rows = pl.concat([*parts, canary]).sort("ts")
    out = compare_snapshot_rows(rows, onset=ONSET, end=END).row(0, named=True)
    assert out["labeled_rows"] == canary["label"].is_not_null().sum()
    assert out["labeled_rows"] < 200
    assert out["loss_z"] > 5 and out["loss_delta"] > 0
    assert out["tail_z"] < 3  # nothing in the prediction tails: only the labels tell


def test_snapshot_served_long_before_is_not_new():
    rng = np.random.default_rng(4)
    rows = pl.concat(
        [
            _rows(rng, 2000, T0, 48, "m", "A", "s-old", _healthy(rng)),
            _rows(rng, 300, ONSET, 6, "m", "A", "s-old", _saturated(rng, 0.5)),
        ]
    )
    assert compare_snapshot_rows(rows, onset=ONSET, end=END).is_empty()


def test_bad_input():
    rows = pl.DataFrame({"ts": [T0], "model": ["m"], "snapshot": ["s"], "prediction": [0.1]})
    with pytest.raises(ValueError, match="experiment"):
        compare_snapshot_rows(rows, onset=ONSET, end=END)
    with pytest.raises(ValueError, match="before onset"):
        compare_snapshot_rows(rows, onset=END, end=ONSET)


def _shifts(rows):
    from hawknb.kernels.snapshot_rows import ROW_SHIFT_SCHEMA

    base = dict.fromkeys(ROW_SHIFT_SCHEMA)
    return pl.DataFrame(
        [{**base, "first_ts": ONSET, "model": "m", **r} for r in rows], schema=ROW_SHIFT_SCHEMA
    )


def test_row_suspects_thresholds_and_arms_of_a_cut_over():
    from hawknb.triage.row_evidence import ROW_Z, row_suspects
    from hawknb.triage.topline import Anomaly

    anomaly = Anomaly("m_metric", ONSET, END, -1, 5.0, 0.9, timedelta(minutes=30))
    below = ROW_Z - 0.5
    # one arm just below the threshold, compared with the rows before: not a suspect
    one = _shifts([{"experiment": "A", "snapshot": "s", "reference": "before", "z": below}])
    assert row_suspects(one, anomaly).is_empty()
    # the same release in two arms, each just below: independent rows add up (Stouffer)
    two = _shifts(
        [{"experiment": e, "snapshot": "s", "reference": "before", "z": below} for e in ("A", "B")]
    )
    assert row_suspects(two, anomaly).height == 2
    # same-hours evidence is not pooled across arms, and weighs more than before/after
    same = _shifts(
        [
            {"experiment": "A", "snapshot": "s", "reference": "same hours", "z": ROW_Z + 3},
            {"experiment": "B", "snapshot": "t", "reference": "before", "z": ROW_Z + 3},
            {"experiment": "C", "snapshot": "u", "reference": "same hours", "z": below},
        ]
    )
    out = row_suspects(same, anomaly)
    assert out["snapshot"].to_list() == ["s", "t"]
    assert out["confidence"][0] > out["confidence"][1] > 0


def test_a_thin_arm_keeps_the_same_hours_comparison_and_its_tail_z_stays_calibrated():
    """A sampled log's canary arm serves about 70 rows of its old snapshot beside the canary
    in those hours: enough for the like-with-like comparison (MIN_REFERENCE_ROWS), which
    used to fall back to the rows before below 100. The tail share expected comes from the
    same small reference with its variance widened, so healthy canaries do not reach large z
    more often than against a reference of 300 rows (200 worlds each), while a bad one does."""
    from hawknb.kernels.snapshot_rows import MIN_REFERENCE_ROWS

    def world(rng, pred, reference_rows=70):
        return pl.concat(
            [
                _rows(rng, 1500, T0, 48, "m", "B", "s-old", _healthy(rng)),
                _rows(rng, reference_rows, ONSET, 6, "m", "B", "s-old", _healthy(rng)),
                _rows(rng, 20, ONSET, 6, "m", "B", "s-canary", pred),
            ]
        ).sort("ts")

    rng = np.random.default_rng(4)
    bad = compare_snapshot_rows(world(rng, _saturated(rng, 0.6)), onset=ONSET, end=END)
    row = bad.row(0, named=True)
    assert (row["snapshot"], row["reference"]) == ("s-canary", "same hours")
    assert MIN_REFERENCE_ROWS <= row["reference_rows"] < 100
    assert row["z"] > 8
    for reference_rows in (70, 300):
        zs = []
        for seed in range(200):
            rng = np.random.default_rng(100 + seed)
            out = compare_snapshot_rows(
                world(rng, _healthy(rng), reference_rows), onset=ONSET, end=END
            )
            zs.append(out["tail_z"][0])
        assert np.mean(np.asarray(zs) > 5) <= 0.01, reference_rows


def test_range_z_holds_its_level_when_nothing_changed_and_finds_saturated_rows():
    """Beyond the reference's whole range: exact under exchangeability, so on rows drawn like
    the reference's its z passes 3.09 (one-sided 0.1%) at most that often, while 8 of 100
    rows saturated at 1.0 (a blow-up the central band sees as a few % of extra tail rows)
    stand out against the same reference."""
    from hawknb.kernels.snapshot_rows import _range_z

    rng = np.random.default_rng(7)
    zs = [
        _range_z(rng.normal(size=100), rng.normal(size=541), *_one_stratum(100, 541))[2]
        for _ in range(4000)
    ]
    assert np.mean(np.array(zs) > 3.09) <= 0.002
    assert min(zs) >= 0.0
    ref = 1 / (1 + np.exp(-rng.normal(-2.0, 1.0, 541)))
    p = 1 / (1 + np.exp(-rng.normal(-2.0, 1.0, 100)))
    p[:8] = 1.0
    share, expected, z = _range_z(p, ref, *_one_stratum(100, 541))
    assert share >= 0.08 and expected == pytest.approx(2 / 542)
    assert z > 4.5
    # a tie with the reference's extreme is not beyond it
    assert _range_z(np.full(20, ref.max()), ref, *_one_stratum(20, 541))[0] == 0.0


def test_range_z_is_not_fooled_by_a_retrain_that_only_spreads_wider():
    """A benign retrain whose predictions spread 1.8x wider puts many rows just past a small
    reference's extremes (the simulator's benign rollouts: 18% of rows past 68 reference
    rows); only rows far beyond (past the range widened by its interquartile range, logit
    scale for probabilities) count, so it stays under the triage's bar (RANGE_Z 4): rows merely
    past the extremes would pass it in about 15% of such retrains."""
    from hawknb.kernels.snapshot_rows import _range_z

    rng = np.random.default_rng(11)
    zs = []
    for _ in range(300):
        ref = 1 / (1 + np.exp(-rng.normal(-2.0, 1.0, 68)))
        p = 1 / (1 + np.exp(-rng.normal(-2.0, 1.8, 292)))
        zs.append(_range_z(p, ref, *_one_stratum(292, 68))[2])
    assert np.mean(np.array(zs) >= 4.0) <= 0.01


def _one_stratum(m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(m, np.int64), np.zeros(n, np.int64)


def test_range_z_holds_rows_only_against_the_hours_both_sides_served():
    """A snapshot that took over in the hour a data break began shares that hour with the rows
    it replaced; its later hours' rows, far off on broken data, are not held against them."""
    from hawknb.kernels.snapshot_rows import _range_z

    rng = np.random.default_rng(3)
    ref = rng.normal(size=200)
    p = np.concatenate([rng.normal(size=40), rng.normal(50.0, 1.0, size=160)])
    b = np.concatenate([np.zeros(40, np.int64), np.ones(160, np.int64)])
    assert _range_z(p, ref, b, np.zeros(200, np.int64))[2] < 2.0
    assert _range_z(p, ref, np.zeros(200, np.int64), np.zeros(200, np.int64))[2] > 10.0
