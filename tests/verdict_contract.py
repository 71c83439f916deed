"""The verdict keys `hawknb triage --json` documents (docs/triage.md, issue 3), written out
here rather than read from the code, so a key the code drops fails the tests."""

VERDICT_KEYS = (
    "metric",
    "onset",
    "model",
    "experiment",
    "snapshot",
    "cause",
    "features",
    "upstream",
    "layer",
    "confidence",
    "findings",
)
CAUSES = frozenset({"none", "upstream_data", "bad_snapshot", "training_data"})
