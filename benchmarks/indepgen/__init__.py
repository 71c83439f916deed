"""An independent workspace generator, for measuring triage on data it was not built on.

Independence rule
-----------------
This package was written from docs/workspace.md (the workspace contract) and the public
CLI/API in README.md only. Its authors never read hawknb/simulate, hawknb/triage or
hawknb/kernels, and it imports nothing from hawknb. Keep it that way: do not copy names,
magnitudes or timings from the simulator, and do not tune triage on the held-out seeds
(100000+) of benchmarks/indep_accuracy.py.

Its own conventions differ on purpose: hyphenated model names (`ads-pcvr`), dotted feature
names (`usr.clk_7d`), experiment arms `ctl` / `trt-NNNN`, snapshots `r260411-b0571`, module
paths `embed`/`mix`/`head` or `layers.0`/`layers.2`/`proj`, 30-minute metric cadence with
segments, serving rows at random seconds, lineage kinds source/table/job/feature with node ids
like `kafka.click_events` and `etl/agg_07`, hourly lineage stats, features stored Float32,
missing feature values served as the default 0.0, and (hard) timestamps written in
America/New_York.

Usage
-----
    python -m benchmarks.indepgen OUT --kind bad_snapshot --seed 3 [--difficulty hard]
        [--knob drop=0.04 --knob canary_share=0.05]

writes OUT/workspace (valid under `hawknb check`) and OUT/truth.json (outside it) with the keys
benchmarks/triage_accuracy.py scores: cause, model, snapshot, features, upstream, layer,
experiment, onset, affected_models, downstream_features (plus kind, metric, knobs,
distractors, benign_rollouts for reading the misses).

Kinds: upstream_data (a source loses rows; its downstream count/rate features shrink and the
rest fall back to defaults), feature_coverage (one job's features fall back to defaults on a
share of rows; the job is the root), bad_snapshot (a canary of a snapshot with one broken
layer on ONE experiment arm), activation_blowup (a full release whose hidden unit explodes on
the rows where one input feature exceeds a threshold), training_data (a snapshot fine-tuned on
partitions with leaked positive labels, on one arm), none (the top line drops, no model is
involved).

Knobs (knobs.Knobs; `difficulty` = easy / medium / hard sets them, `--knob` overrides one):

| knob | meaning | easy | medium | hard |
|---|---|---|---|---|
| history_days | days of metrics / serving / lineage stats | 10 | 14 | 14 |
| n_models | models in the serving log | 2 | 3 | 4 |
| features_min/max | features per model | 150-180 | 150-300 | 200-300 |
| drop | relative top-line drop of the incident metric | 10-15% | 5-8% | 3-6% |
| label_delay_h | mean hours before a label arrives | 1-2 | 3-8 | 8-16 |
| hours_after_onset | how long the log runs past the onset | 14-20 | 10-18 | 8-14 |
| distractors | unrelated level shifts in other metrics (+ a lineage dip) | 0 | 2 | 3 |
| same_metric_distractor | a dip of the incident metric on another day | no | no | yes |
| distractor_scale | distractor surprise (in its metric's noise) relative to the incident's | – | 0.6-1.0 | 1.0-1.6 |
| benign_rollout | a healthy snapshot rolls out within the incident hour | no | yes | yes |
| canary_share | bad snapshot's share of its arm (arm = 50% of traffic) | 100% | 12-20% | 6-12% |
| blowup_rows | share of rows that trigger the blow-up | 15-25% | 8-12% | 5-10% |
| break_loss | share of a source lost in an upstream break | 85-95% | 50-70% | 30-45% |
| coverage_loss | share of rows whose features fall back to defaults | 85-95% | 50-70% | 30-45% |
| metric_noise | relative noise per metric point (ratio metrics 0.4x) | 1% | 1-2% | 1.5-2.5% |
| weekly_dip | how much lower weekends are | 0 | 2-5% | 4-8% |
| tz | time zone the timestamps are written in | UTC | UTC | America/New_York |
| cadence_min, rows_per_slot, arm_split, lineage_noise | 30 min, 24, 50%, 4% in every preset | | | |

Distractor sizes are in units of their own metric's noise relative to the incident's, so
`distractor_scale` 1.0 means "as surprising as the incident" whatever the metric.
The damage is consistent with the traffic it touches: the top line loses `drop` spread over
the damaged share, so a canary's share and a blow-up's row share are raised to at least
drop / 0.8 (a snapshot on 2% of traffic cannot cost 5% of the metric); truth.json records the
realized `damaged_share`.

Measuring: benchmarks/indep_accuracy.py (seeds 0-99 tune, 100000+ held out; see its docstring)
writes the difficulty curve to benchmarks/results/indep_accuracy.md.
"""

from .generate import TRUTH_KEYS, build, generate
from .knobs import DIFFICULTIES, KINDS, PRESETS, Knobs

__all__ = ["DIFFICULTIES", "KINDS", "PRESETS", "TRUTH_KEYS", "Knobs", "build", "generate"]
