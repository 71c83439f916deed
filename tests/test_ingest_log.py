"""`hawknb ingest log/metrics`: serving logs and metrics in a team's own schema -> the contract."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import hawknb.ingest as hi
from hawknb.cli import main
from hawknb.ingest import IngestError
from hawknb.workspace import Workspace, WorkspaceError, WorkspaceWarning
from hawknb.workspace import contract as c

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
N = 48


def _log(n: int = N) -> pl.DataFrame:
    """A serving log with its own names: epoch seconds, a numeric model version, a score."""
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "event_time": [int((T0 + timedelta(hours=h)).timestamp()) for h in range(n)],
            "score": rng.random(n),
            "clicked": rng.integers(0, 2, n).astype(float),
            "model_name": ["ctr"] * n,
            "model_version": [3] * n,
            "age_days": rng.random(n) * 10,
        }
    )


LOG_MAP = "ts=event_time,prediction=score,label=clicked,model=model_name,snapshot=model_version"


def _snapshot_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_csv_with_epoch_seconds_and_renamed_columns(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    _log().write_csv(src)
    ws = tmp_path / "ws"
    hi.log(src, ws, mapping=LOG_MAP, constants="experiment=control")
    out = pl.read_parquet(ws / "serving.parquet")
    want = _log()
    assert out[c.TS].dtype == pl.Datetime("us", "UTC")
    assert out[c.TS].to_list() == [T0 + timedelta(hours=h) for h in range(N)]
    np.testing.assert_allclose(out[c.PREDICTION].to_numpy(), want["score"].to_numpy())
    assert out[c.SNAPSHOT].unique().to_list() == ["3"]  # a version number becomes a name
    assert out[c.EXPERIMENT].unique().to_list() == ["control"]
    # the log alone is checked table by table (metrics not ingested yet)
    assert sorted(p.name for p in ws.iterdir()) == ["serving.parquet"]


@pytest.mark.parametrize(("unit", "scale"), [("ms", 1_000), ("us", 1_000_000), (None, 1_000)])
def test_epoch_units_given_or_judged(tmp_path: Path, unit: str | None, scale: int) -> None:
    log = _log().with_columns(pl.col("event_time") * scale)
    log.write_parquet(tmp_path / "log.parquet")
    hi.log(
        tmp_path / "log.parquet",
        tmp_path / "ws",
        mapping=LOG_MAP,
        constants="experiment=a",
        ts_unit=unit,
    )
    ts = pl.read_parquet(tmp_path / "ws" / "serving.parquet")[c.TS]
    assert ts[0] == T0
    assert ts[-1] == T0 + timedelta(hours=N - 1)


def test_hive_partitioned_folder(tmp_path: Path) -> None:
    log = _log().with_columns(pl.from_epoch("event_time").dt.date().cast(pl.String).alias("day"))
    folder = tmp_path / "logs"
    log.write_parquet(folder, partition_by="day")
    assert len(list(folder.rglob("*.parquet"))) == 2  # two days, two partitions
    with pytest.warns(WorkspaceWarning, match=r"non-numeric columns \['day'\]"):
        hi.log(folder, tmp_path / "ws", mapping=LOG_MAP, constants="experiment=a")
    out = pl.read_parquet(tmp_path / "ws" / "serving.parquet").sort(c.TS)
    assert out.height == N
    assert out[c.TS][0] == T0


def test_naive_times_read_in_the_stated_zone(tmp_path: Path) -> None:
    # 2024-03-01 00:00 in New York (EST, UTC-5) is 05:00 UTC; 2024-07-01 00:00 (EDT) is 04:00
    m = pl.DataFrame(
        {
            "when": ["2024-03-01 00:00:00", "2024-07-01 00:00:00"],
            "kpi": ["rev"] * 2,
            "v": [1.0, 2.0],
        }
    )
    m.write_csv(tmp_path / "m.csv")
    hi.metrics(
        tmp_path / "m.csv",
        tmp_path / "ws",
        mapping="ts=when,metric=kpi,value=v",
        tz="America/New_York",
    )
    ts = pl.read_parquet(tmp_path / "ws" / "metrics.parquet")[c.TS].to_list()
    assert ts == [
        datetime(2024, 3, 1, 5, tzinfo=timezone.utc),
        datetime(2024, 7, 1, 4, tzinfo=timezone.utc),
    ]


def test_strings_with_offsets_need_no_zone(tmp_path: Path) -> None:
    m = pl.DataFrame(
        {
            "ts": ["2024-03-01T01:00:00+01:00", "2024-03-01T02:00:00Z"],
            "metric": ["rev"] * 2,
            "value": [1.0, 2.0],
        }
    )
    m.write_csv(tmp_path / "m.csv")
    hi.metrics(tmp_path / "m.csv", tmp_path / "ws")
    ts = pl.read_parquet(tmp_path / "ws" / "metrics.parquet")[c.TS].to_list()
    assert ts == [T0, T0 + timedelta(hours=2)]


def test_naive_times_without_a_zone_are_refused(tmp_path: Path) -> None:
    pl.DataFrame({"ts": ["2024-03-01 00:00:00"], "metric": ["r"], "value": [1.0]}).write_csv(
        tmp_path / "m.csv"
    )
    with pytest.raises(IngestError, match=r"m\.csv, column 'ts': holds naive time strings.*--tz"):
        hi.metrics(tmp_path / "m.csv", tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


def test_unparseable_time_names_file_line_and_column_and_writes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    good = pl.DataFrame(
        {
            "t": ["2024-03-01 00:00:00", "2024-03-01 01:00:00"],
            "metric": ["r"] * 2,
            "value": [1.0, 2.0],
        }
    )
    good.write_csv(tmp_path / "good.csv")
    hi.metrics(tmp_path / "good.csv", ws, mapping="ts=t", tz="UTC")
    before = _snapshot_files(ws)
    bad = pl.DataFrame(
        {
            "t": ["2024-03-01 00:00:00", "2024-03-01 01:00:00", "yesterday noon"],
            "metric": ["r"] * 3,
            "value": [1.0, 2.0, 3.0],
        }
    )
    bad.write_csv(tmp_path / "bad.csv")
    with pytest.raises(IngestError) as info:
        hi.metrics(tmp_path / "bad.csv", ws, mapping="ts=t", tz="UTC", force=True)
    msg = str(info.value)
    assert "bad.csv, line 4, column 't': cannot parse 'yesterday noon'" in msg
    assert "\n" not in msg
    assert _snapshot_files(ws) == before  # the earlier ingest is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv", "ws"]


def test_mapping_that_names_a_missing_column(tmp_path: Path) -> None:
    _log().write_csv(tmp_path / "log.csv")
    with pytest.raises(IngestError, match=r"--map prediction=pred_score names column 'pred_score'"):
        hi.log(tmp_path / "log.csv", tmp_path / "ws", mapping="prediction=pred_score")
    assert not (tmp_path / "ws").exists()


def test_missing_contract_column_says_how_to_map_it(tmp_path: Path) -> None:
    _log().write_csv(tmp_path / "log.csv")
    with pytest.raises(IngestError, match=r"lacks the contract's columns \['experiment'\]"):
        hi.log(tmp_path / "log.csv", tmp_path / "ws", mapping=LOG_MAP)


def test_non_numeric_prediction_is_refused(tmp_path: Path) -> None:
    _log().write_csv(tmp_path / "log.csv")
    with pytest.raises(IngestError, match=r"column 'prediction': is String; expected numbers"):
        hi.log(
            tmp_path / "log.csv",
            tmp_path / "ws",
            mapping=LOG_MAP.replace("prediction=score", "prediction=model_name").replace(
                ",model=model_name", ""
            ),
            constants="experiment=a,model=m",
        )


def test_contract_violation_found_at_the_end_leaves_nothing(tmp_path: Path) -> None:
    # a metric repeated at the same hour violates the (ts, metric, segment) key
    m = pl.DataFrame({"ts": [1709251200, 1709251200], "metric": ["r", "r"], "value": [1.0, 2.0]})
    m.write_csv(tmp_path / "m.csv")
    with pytest.raises(WorkspaceError, match=r"ws/metrics\.parquet: has 2 duplicate rows"):
        hi.metrics(tmp_path / "m.csv", tmp_path / "ws")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def test_existing_table_is_replaced_only_with_force(tmp_path: Path) -> None:
    _log().write_csv(tmp_path / "log.csv")
    args = {"mapping": LOG_MAP, "constants": "experiment=a"}
    hi.log(tmp_path / "log.csv", tmp_path / "ws", **args)
    with pytest.raises(IngestError, match=r"serving\.parquet: already exists.*--force"):
        hi.log(tmp_path / "log.csv", tmp_path / "ws", **args)
    _log(10).write_csv(tmp_path / "log.csv")
    hi.log(tmp_path / "log.csv", tmp_path / "ws", force=True, **args)
    assert pl.read_parquet(tmp_path / "ws" / "serving.parquet").height == 10


def test_cli_log_and_metrics_make_a_valid_workspace(tmp_path: Path, capsys) -> None:
    _log().write_csv(tmp_path / "log.csv")
    hours = [T0 + timedelta(hours=h) for h in range(N)]
    pl.DataFrame({"hour": [h.strftime("%d/%m/%Y %H:%M") for h in hours], "revenue": 1.0}).write_csv(
        tmp_path / "m.csv"
    )
    ws = str(tmp_path / "ws")
    assert (
        main(
            [
                "ingest",
                "log",
                str(tmp_path / "log.csv"),
                ws,
                "--map",
                LOG_MAP,
                "--const",
                "experiment=control",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "ingest",
                "metrics",
                str(tmp_path / "m.csv"),
                ws,
                "--map",
                "ts=hour,value=revenue",
                "--const",
                "metric=revenue",
                "--tz",
                "UTC",
                "--ts-format",
                "%d/%m/%Y %H:%M",
            ]
        )
        == 0
    )
    assert "ok:" in capsys.readouterr().out
    w = Workspace.open(ws)
    w.validate()
    assert w.models() == ["ctr"]
    assert w.features("ctr") == ["age_days"]
    assert main(["ingest", "metrics", str(tmp_path / "m.csv"), ws, "--tz", "UTC"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("hawknb: error: ") and "\n" not in err


def test_bad_zone_and_bad_map_syntax(tmp_path: Path) -> None:
    _log().write_csv(tmp_path / "log.csv")
    with pytest.raises(IngestError, match=r"--tz 'Mars/Olympus': is not a known time zone"):
        hi.log(tmp_path / "log.csv", tmp_path / "ws", tz="Mars/Olympus")
    with pytest.raises(IngestError, match=r"--map 'prediction': expected NAME=VALUE"):
        hi.log(tmp_path / "log.csv", tmp_path / "ws", mapping="prediction")
