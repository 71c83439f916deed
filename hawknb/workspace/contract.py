"""The workspace contract, v1: file names and column names are the vocabulary of hawknb.

Every module refers to columns through these constants so that a rename is a one-line change
and a typo is an import error instead of a silent empty join.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# -- column names -----------------------------------------------------------------------------
TS = "ts"
METRIC = "metric"
VALUE = "value"
SEGMENT = "segment"
MODEL = "model"
EXPERIMENT = "experiment"
SNAPSHOT = "snapshot"
PREDICTION = "prediction"
LABEL = "label"
TRAFFIC = "traffic"
PUBLISHED_TS = "published_ts"
TRAIN_START = "train_start"
TRAIN_END = "train_end"
PARTITION = "partition"
ROWS = "rows"
LABEL_MEAN = "label_mean"
STEP = "step"
LOSS = "loss"
NODE = "node"
STAT = "stat"

#: The segment value (besides null) that holds the top line of a segmented metric.
TOP_LINE_SEGMENT = "all"

#: Serving-log columns that are not features; every other numeric column is a feature.
SERVING_RESERVED: tuple[str, ...] = (TS, MODEL, EXPERIMENT, SNAPSHOT, PREDICTION, LABEL)

# -- files ------------------------------------------------------------------------------------
LINEAGE_FILE = "lineage.json"
SNAPSHOTS_DIR = "snapshots"
FEATURES_FILE = "features.json"
PROGRAM_SUFFIX = ".pt2"
#: snapshot file suffixes, in order of preference when a snapshot has more than one
PROGRAM_SUFFIXES: tuple[str, ...] = (PROGRAM_SUFFIX, ".onnx")

Kind = Literal["utc_datetime", "str", "float", "int", "date"]


@dataclass(frozen=True)
class TableSpec:
    """One Parquet table of the contract: which columns it must have and of which kind."""

    name: str
    required: dict[str, Kind]
    optional: dict[str, Kind] = field(default_factory=dict)
    mandatory: bool = False
    #: columns that identify a row; a repeated key is a duplicate row
    key: tuple[str, ...] = ()
    doc: str = ""

    @property
    def file(self) -> str:
        return f"{self.name}.parquet"


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "metrics",
            {TS: "utc_datetime", METRIC: "str", VALUE: "float"},
            {SEGMENT: "str"},
            mandatory=True,
            key=(TS, METRIC, SEGMENT),
            doc="top-line product metrics, e.g. hourly revenue or CTR",
        ),
        TableSpec(
            "serving",
            {
                TS: "utc_datetime",
                MODEL: "str",
                EXPERIMENT: "str",
                SNAPSHOT: "str",
                PREDICTION: "float",
            },
            {LABEL: "float"},
            mandatory=True,
            doc="sampled serving log: model inputs (every other numeric column) and outputs",
        ),
        TableSpec(
            "rollouts",
            {
                TS: "utc_datetime",
                MODEL: "str",
                EXPERIMENT: "str",
                SNAPSHOT: "str",
                TRAFFIC: "float",
            },
            key=(TS, MODEL, EXPERIMENT, SNAPSHOT),
            doc="from ts on, snapshot serves that share of the (model, experiment) traffic",
        ),
        TableSpec(
            "snapshots",
            {
                MODEL: "str",
                SNAPSHOT: "str",
                PUBLISHED_TS: "utc_datetime",
                TRAIN_START: "utc_datetime",
                TRAIN_END: "utc_datetime",
            },
            {EXPERIMENT: "str"},
            key=(MODEL, SNAPSHOT),
            doc="snapshot metadata; training data is the partitions in [train_start, train_end)",
        ),
        TableSpec(
            "training",
            {MODEL: "str", PARTITION: "date", ROWS: "int", LABEL_MEAN: "float"},
            key=(MODEL, PARTITION),
            doc="training-data partitions",
        ),
        TableSpec(
            "training_curves",
            {MODEL: "str", SNAPSHOT: "str", STEP: "int", LOSS: "float"},
            key=(MODEL, SNAPSHOT, STEP),
            doc="training-time metrics",
        ),
        TableSpec(
            "lineage_stats",
            {TS: "utc_datetime", NODE: "str", STAT: "str", VALUE: "float"},
            key=(TS, NODE, STAT),
            doc="statistics of lineage nodes over time",
        ),
    )
}
