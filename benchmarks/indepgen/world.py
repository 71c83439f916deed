"""The static world: models, their features, and the lineage that produces the features.

Lineage here is source -> table -> job -> feature (a job may read two tables: a join). Every
feature belongs to one job; a job's features share a latent factor, so a break upstream moves
them together. Each model reads a subset of the feature pool and has a hidden label rule over a
few "signal" features; the exported snapshots learn that rule from sampled training rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .knobs import Knobs

MODEL_NAMES = (
    "feed-ranker",
    "ads-pcvr",
    "search-rel",
    "notif-open",
    "cart-reco",
    "promo-uplift",
)
# the top-line metric each model moves (never written to the workspace: triage must find it)
MODEL_METRIC = {
    "feed-ranker": "feed_engagements",
    "ads-pcvr": "ad_revenue_usd",
    "search-rel": "search_success_rate",
    "notif-open": "notif_opens",
    "cart-reco": "cart_adds",
    "promo-uplift": "promo_redemptions",
}
UNRELATED_METRICS = ("p95_latency_ms", "daily_actives", "crash_free_share", "support_tickets")
SOURCES = (
    "kafka.click_events",
    "kafka.impressions",
    "pg.orders",
    "pg.catalog",
    "s3.partner_feed",
    "kafka.search_queries",
    "pg.accounts",
    "kafka.app_telemetry",
    "s3.geo_dump",
)
ENTITIES = ("usr", "itm", "adv", "qry", "ctx", "slr", "geo", "dev")
STATS = ("clk", "imp", "buy", "dwell", "spend", "ctr", "cvr", "recency", "score", "emb")
WINDOWS = ("1h", "6h", "1d", "7d", "28d")
FEATURE_TYPES = ("count", "rate", "real", "flag")


@dataclass
class Feature:
    name: str
    job: str
    ftype: str
    rho: float  # loading on the job's latent factor
    loc: float
    scale: float


@dataclass
class Model:
    name: str
    metric: str
    features: list[str]
    signal: dict[str, float]  # feature -> weight on its standardized latent value
    base_logit: float
    arms: dict[str, float]  # experiment -> traffic share
    arch: str  # "tower" or "stack": different module paths


@dataclass
class World:
    start: np.datetime64
    slots: int
    slot_s: int
    sources: list[str]
    tables: dict[str, list[str]]  # table -> its sources
    jobs: dict[str, list[str]]  # job -> tables it reads
    features: dict[str, Feature]
    models: list[Model]
    drift: dict[str, float] = field(default_factory=dict)  # feature -> latent drift per day

    @property
    def weekday0(self) -> int:
        """Weekday of the log's first day (0 = Monday)."""
        return int((self.start.astype("datetime64[D]").astype(int) + 3) % 7)

    @property
    def end(self) -> np.datetime64:
        return self.start + np.timedelta64(self.slots * self.slot_s, "s")

    def job_sources(self, job: str) -> set[str]:
        return {s for t in self.jobs[job] for s in self.tables[t]}


def _lineage(rng: np.random.Generator) -> tuple[list[str], dict, dict]:
    n_src = int(rng.integers(6, len(SOURCES) + 1))
    sources = [str(s) for s in rng.choice(SOURCES, size=n_src, replace=False)]
    tables: dict[str, list[str]] = {}
    for src in sources:
        base = src.split(".", 1)[1]
        for k in range(int(rng.integers(1, 3))):
            tables[f"dw.{base}_{('hourly', 'daily')[k]}"] = [src]
    tnames = list(tables)
    jobs: dict[str, list[str]] = {}
    for i in range(int(rng.integers(22, 30))):
        reads = [tnames[int(rng.integers(len(tnames)))]]
        if rng.random() < 0.25:
            other = tnames[int(rng.integers(len(tnames)))]
            if other not in reads:
                reads.append(other)
        jobs[f"etl/agg_{i:02d}"] = reads
    return sources, tables, jobs


def _features(rng: np.random.Generator, jobs: dict, n: int) -> dict[str, Feature]:
    names: set[str] = set()
    out: dict[str, Feature] = {}
    jnames = list(jobs)
    while len(out) < n:
        name = f"{rng.choice(ENTITIES)}.{rng.choice(STATS)}_{rng.choice(WINDOWS)}"
        if name in names:
            name = f"{name}_v{int(rng.integers(2, 9))}"
            if name in names:
                continue
        names.add(name)
        ftype = str(rng.choice(FEATURE_TYPES, p=[0.4, 0.25, 0.3, 0.05]))
        loc = {"count": rng.uniform(0.5, 4.0), "rate": rng.uniform(-4, 0), "real": 0.0}.get(
            ftype, rng.uniform(-1, 1)
        )
        scale = {"count": rng.uniform(0.2, 0.6), "rate": rng.uniform(0.3, 1.0)}.get(
            ftype, rng.uniform(0.5, 40.0)
        )
        out[name] = Feature(
            name=name,
            job=jnames[int(rng.integers(len(jnames)))],
            ftype=ftype,
            rho=float(rng.uniform(0.3, 0.85)),
            loc=float(loc),
            scale=float(scale),
        )
    return out


def build_world(knobs: Knobs, rng: np.random.Generator) -> World:
    """Draw the models, feature pool and lineage for one scenario."""
    sources, tables, jobs = _lineage(rng)
    pool = _features(rng, jobs, int(knobs.features_max * 1.5))
    fnames = list(pool)
    n_models = max(1, min(knobs.n_models, len(MODEL_NAMES)))
    models = []
    for i, name in enumerate(rng.choice(MODEL_NAMES, size=n_models, replace=False)):
        k = int(rng.integers(knobs.features_min, knobs.features_max + 1))
        # each model prefers a different slice of the pool, so the union is wide
        w = np.exp(-(((np.arange(len(fnames)) / len(fnames)) - (i + 0.5) / n_models) ** 2) / 0.1)
        chosen = [str(f) for f in rng.choice(fnames, size=k, replace=False, p=w / w.sum())]
        nsig = min(int(rng.integers(10, 17)), max(2, k // 2))
        sig = rng.choice(chosen, size=nsig, replace=False)
        weights = rng.normal(0, 1, nsig)
        weights *= 1.6 / np.sqrt((weights**2).sum())
        arms = {"ctl": 1.0 - knobs.arm_split, "trt-" + str(int(rng.integers(1000, 9999))): 0.0}
        trt = next(a for a in arms if a != "ctl")
        arms[trt] = knobs.arm_split
        models.append(
            Model(
                name=str(name),
                metric=MODEL_METRIC[str(name)],
                features=chosen,
                signal={str(f): float(x) for f, x in zip(sig, weights, strict=True)},
                base_logit=float(rng.uniform(-3.0, -1.5)),
                arms=arms,
                arch=("tower", "stack")[int(rng.integers(2))],
            )
        )
    drift = {str(f): float(rng.normal(0, 0.02)) for f in rng.choice(fnames, size=20, replace=False)}
    slot_s = knobs.cadence_min * 60
    slots = int(knobs.history_days * 86400 // slot_s)
    day0 = np.datetime64("2025-01-06") + np.timedelta64(int(rng.integers(0, 500)), "D")
    return World(
        start=day0.astype("datetime64[s]"),
        slots=slots,
        slot_s=slot_s,
        sources=sources,
        tables=tables,
        jobs=jobs,
        features=pool,
        models=models,
        drift=drift,
    )


def latent_block(
    world: World, names: list[str], days: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Standardized latent values (rows x features): job factor + own noise + slow drift."""
    n = len(days)
    feats = [world.features[f] for f in names]
    jobs = sorted({ft.job for ft in feats})
    which = np.array([jobs.index(ft.job) for ft in feats])
    rho = np.array([ft.rho for ft in feats])
    factors = rng.standard_normal((n, len(jobs)))
    out = factors[:, which] * rho + rng.standard_normal((n, len(names))) * np.sqrt(1 - rho**2)
    drift = np.array([world.drift.get(f, 0.0) for f in names])
    if drift.any():
        out += np.asarray(days, dtype=np.float64)[:, None] * drift
    return out


def observe(world: World, names: list[str], latent: np.ndarray) -> np.ndarray:
    """Map latent values to what the feature store serves (counts, rates, reals, flags)."""
    feats = [world.features[f] for f in names]
    loc = np.array([ft.loc for ft in feats])
    scale = np.array([ft.scale for ft in feats])
    kind = np.array([ft.ftype for ft in feats])
    out = np.empty_like(latent)
    for ftype in FEATURE_TYPES:
        cols = np.flatnonzero(kind == ftype)
        if not len(cols):
            continue
        z = latent[:, cols]
        if ftype == "count":
            out[:, cols] = np.expm1(np.maximum(loc[cols] + scale[cols] * z, 0.0))
        elif ftype == "rate":
            out[:, cols] = 1.0 / (1.0 + np.exp(-(loc[cols] + scale[cols] * z)))
        elif ftype == "real":
            out[:, cols] = scale[cols] * z
        else:
            out[:, cols] = (z > loc[cols]).astype(np.float64)
    return out


def true_logit(model: Model, names: list[str], latent: np.ndarray) -> np.ndarray:
    """The hidden label rule: linear in the signal latents plus one interaction."""
    idx = {f: i for i, f in enumerate(names)}
    cols = list(model.signal)
    z = np.stack([latent[:, idx[f]] for f in cols], axis=1)
    w = np.array([model.signal[f] for f in cols])
    return model.base_logit + z @ w + 0.4 * z[:, 0] * z[:, 1]
