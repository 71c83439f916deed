"""The simulated ads-like system: models, experiments, features and the lineage that feeds them.

Everything here is drawn from one seeded generator so a seed fixes the whole world. Names are
drawn from neutral pools so that nothing in a workspace (model, feature or node names) hints at
which incident was planted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: the role decides what a model predicts and which metric it drives
ROLES = ("ctr", "cvr", "quality")
_MODEL_NAMES = {
    "ctr": ["feed_ranker", "pclick", "ads_click", "click_tower", "rank_main"],
    "cvr": ["pconv", "conv_tower", "post_click", "action_model", "buyer_intent"],
    "quality": ["ad_quality", "relevance", "integrity_score", "creative_score", "rel_tower"],
}
_EXPERIMENTS = [("control", "test"), ("ctl", "exp"), ("prod", "candidate"), ("base", "treat")]
_SOURCES = [
    "impression_log", "click_log", "user_profile", "ad_catalog", "advertiser_db", "page_views",
    "session_events", "geo_ip", "device_info", "search_log", "billing", "inventory",
    "social_graph", "content_index", "payments", "app_events", "video_views", "crm_sync",
]  # fmt: skip
_ENTITIES = ["user", "ad", "adv", "page", "query", "session", "device", "geo", "creative", "camp"]
_STATS = ["ctr", "cnt", "dwell", "spend", "age", "score", "rate", "freq", "recency", "depth"]
_WINDOWS = ["1h", "6h", "1d", "7d", "28d"]
TRANSFORM_KINDS = ("linear", "slog", "clip")


@dataclass
class FeatureSpec:
    """How one feature column is computed from its transform's input tables.

    value = g(x0 + coef * x1), where x_k = loc_k * (1 + season) + scale_k * noise is a column
    of input table k and g is the transform's function. A fault at a source rewrites x_k of
    every table of that source, so it reaches exactly the features downstream of it.
    """

    name: str
    transform: int
    tables: tuple[int, ...]
    loc: tuple[float, ...]
    scale: tuple[float, ...]
    coef: float
    season_amp: float
    season_phase: float
    default: float


@dataclass
class ModelSpec:
    name: str
    role: str
    features: list[int]  # indices into System.features, input order
    importance: np.ndarray  # per input feature, >0
    hidden: int
    share: float  # share of its role's traffic surface


@dataclass
class System:
    """The static part of the simulated world (no time series)."""

    sources: list[str]
    tables: list[str]
    table_source: list[int]
    table_rho: list[float]
    table_volume: list[float]
    transforms: list[str]
    transform_kind: list[str]
    transform_tables: list[tuple[int, ...]]
    features: list[FeatureSpec]
    reports: list[str]
    report_table: list[int]
    models: list[ModelSpec]
    experiments: tuple[str, str]
    segments: tuple[str, ...] = ("ios", "android", "web")
    segment_p: tuple[float, ...] = (0.35, 0.45, 0.2)
    feature_names: list[str] = field(default_factory=list)

    def source_id(self, i: int) -> str:
        return f"src.{self.sources[i]}"

    def table_id(self, i: int) -> str:
        return f"tbl.{self.tables[i]}"

    def transform_id(self, i: int) -> str:
        return f"xf.{self.transforms[i]}"

    def report_id(self, i: int) -> str:
        return f"rpt.{self.reports[i]}"

    def lineage_json(self) -> dict:
        """The lineage DAG in the contract's JSON shape (feature node id = column name)."""
        nodes, edges = [], []
        for i, s in enumerate(self.sources):
            nodes.append({"id": self.source_id(i), "kind": "source", "name": s})
        for i, t in enumerate(self.tables):
            nodes.append({"id": self.table_id(i), "kind": "table", "name": t})
            edges.append(
                {"source": self.source_id(self.table_source[i]), "target": self.table_id(i)}
            )
        for i, x in enumerate(self.transforms):
            nodes.append({"id": self.transform_id(i), "kind": "transform", "name": x})
            for t in self.transform_tables[i]:
                edges.append({"source": self.table_id(t), "target": self.transform_id(i)})
        for f in self.features:
            nodes.append({"id": f.name, "kind": "feature", "name": f.name})
            edges.append({"source": self.transform_id(f.transform), "target": f.name})
        for i, r in enumerate(self.reports):
            nodes.append({"id": self.report_id(i), "kind": "report", "name": r})
            edges.append(
                {"source": self.table_id(self.report_table[i]), "target": self.report_id(i)}
            )
        return {"nodes": nodes, "edges": edges}

    # -- downstream sets (the simulator's own bookkeeping, not a kernel) ---------------------
    def features_of_source(self, s: int) -> list[int]:
        tabs = {t for t, src in enumerate(self.table_source) if src == s}
        return [i for i, f in enumerate(self.features) if tabs & set(f.tables)]

    def features_of_table(self, t: int) -> list[int]:
        return [i for i, f in enumerate(self.features) if t in f.tables]

    def features_of_transform(self, x: int) -> list[int]:
        return [i for i, f in enumerate(self.features) if f.transform == x]

    def models_using(self, feats: list[int]) -> list[int]:
        s = set(feats)
        return [m for m, spec in enumerate(self.models) if s & set(spec.features)]


def _feature_name(rng: np.random.Generator, used: set[str]) -> str:
    for _ in range(1000):
        name = f"{rng.choice(_ENTITIES)}_{rng.choice(_STATS)}_{rng.choice(_WINDOWS)}"
        if name not in used:
            used.add(name)
            return name
    name = f"f_{len(used):04d}"
    used.add(name)
    return name


def _draw_feature(
    rng: np.random.Generator, used: set[str], xi: int, tabs: tuple[int, ...]
) -> FeatureSpec:
    """One output of transform `xi`, a mix of its input tables' values."""
    loc0 = float(rng.lognormal(0.0, 1.5))
    ratio = rng.uniform(2.5, 5.0, size=len(tabs))
    locs = [loc0] + [float(loc0 * rng.uniform(0.3, 3.0)) for _ in tabs[1:]]
    scales = [float(lo / r) for lo, r in zip(locs, ratio, strict=True)]
    coef = float(locs[0] / locs[1] * rng.uniform(0.6, 1.4)) if len(tabs) > 1 else 0.0
    return FeatureSpec(
        name=_feature_name(rng, used),
        transform=xi,
        tables=tabs,
        loc=tuple(locs),
        scale=tuple(scales),
        coef=coef,
        season_amp=float(rng.uniform(0.0, 0.06)),
        season_phase=float(rng.uniform(0, 24)),
        default=float(rng.choice([0.0, 0.0, -1.0])),
    )


def _draw_traffic_shares(rng: np.random.Generator, models: list[ModelSpec]) -> None:
    """Models of one role split that role's traffic."""
    for role in ROLES:
        ms = [m for m in models if m.role == role]
        if ms:
            w = rng.dirichlet(np.full(len(ms), 4.0))
            for m, s in zip(ms, w, strict=True):
                m.share = float(s)


@dataclass
class _Drawn:
    """What the model-drawing phase accumulates: features and the transforms producing them."""

    features: list[FeatureSpec] = field(default_factory=list)
    transforms: list[str] = field(default_factory=list)
    transform_kind: list[str] = field(default_factory=list)
    transform_tables: list[tuple[int, ...]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)


def _draw_tables(
    rng: np.random.Generator, total_feats_est: int
) -> tuple[list[str], list[str], list[int], list[float], list[float]]:
    """Sources and the 1-3 tables read from each, with their autocorrelation and volume."""
    n_src = int(np.clip(total_feats_est // 6, 6, len(_SOURCES)))
    sources = [str(s) for s in rng.choice(_SOURCES, size=n_src, replace=False)]
    tables: list[str] = []
    table_source: list[int] = []
    for s, name in enumerate(sources):
        for k in range(int(rng.integers(1, 4))):
            tables.append(f"{name}_{['daily', 'agg', 'dedup', 'hourly'][k]}")
            table_source.append(s)
    n_tab = len(tables)
    table_rho = [float(rng.uniform(0.2, 0.6)) for _ in range(n_tab)]
    table_volume = [float(rng.uniform(2e4, 5e6)) for _ in range(n_tab)]
    return sources, tables, table_source, table_rho, table_volume


def _draw_model_features(
    rng: np.random.Generator, drawn: _Drawn, features_per_model: int, n_tab: int
) -> list[int]:
    """One model's feature indices: a few shared with earlier models (several models read
    the same columns), the rest new, made by new transforms of 1-2 tables each."""
    chosen: list[int] = []
    features = drawn.features
    if features:
        n_shared = int(rng.integers(1, max(2, features_per_model // 6) + 1))
        n_shared = min(n_shared, len(features))
        chosen += [int(i) for i in rng.choice(len(features), size=n_shared, replace=False)]
    while len(chosen) < features_per_model:
        n_out = int(min(rng.choice([1, 1, 2, 3, 4]), features_per_model - len(chosen)))
        n_in = int(rng.choice([1, 2]))
        tabs = tuple(int(t) for t in rng.choice(n_tab, size=n_in, replace=False))
        xi = len(drawn.transforms)
        kind = str(rng.choice(TRANSFORM_KINDS))
        drawn.transforms.append(
            f"{rng.choice(_ENTITIES)}_{['feat', 'agg', 'join', 'norm'][xi % 4]}_{xi:02d}"
        )
        drawn.transform_kind.append(kind)
        drawn.transform_tables.append(tabs)
        for _ in range(n_out):
            features.append(_draw_feature(rng, drawn.used, xi, tabs))
            chosen.append(len(features) - 1)
    return [int(i) for i in rng.permutation(chosen)]


def _draw_models(
    rng: np.random.Generator, drawn: _Drawn, n_models: int, features_per_model: int, n_tab: int
) -> list[ModelSpec]:
    """Models named by role, each with its features and their importance (a quarter barely
    matter), then their traffic shares."""
    models: list[ModelSpec] = []
    pools = {r: list(rng.permutation(_MODEL_NAMES[r])) for r in ROLES}
    role_count: dict[str, int] = {}
    for m in range(n_models):
        role = ROLES[m % len(ROLES)]
        k = role_count.get(role, 0)
        role_count[role] = k + 1
        base = str(pools[role][k % len(pools[role])])
        name = base if k < len(pools[role]) else f"{base}_{k}"
        chosen = _draw_model_features(rng, drawn, features_per_model, n_tab)
        imp = rng.lognormal(0.0, 0.8, size=len(chosen))
        weak = rng.random(len(chosen)) < 0.25  # features that barely matter
        imp[weak] *= 0.03
        models.append(
            ModelSpec(
                name=name,
                role=role,
                features=chosen,
                importance=imp,
                hidden=int(rng.choice([16, 24, 32])),
                share=1.0,
            )
        )
    _draw_traffic_shares(rng, models)
    return models


def build_system(rng: np.random.Generator, n_models: int, features_per_model: int) -> System:
    """Draw the world: lineage (sources -> tables -> transforms -> features), models, names.
    The phases draw from ``rng`` in a fixed order, so a seed always gives the same world."""
    if n_models < 2:
        raise ValueError(f"n_models={n_models}: the simulator needs at least 2 models")
    if features_per_model < 4:
        raise ValueError(f"features_per_model={features_per_model}: use at least 4")
    total_feats_est = int(n_models * features_per_model * 0.85) + 1
    sources, tables, table_source, table_rho, table_volume = _draw_tables(rng, total_feats_est)
    drawn = _Drawn()
    models = _draw_models(rng, drawn, n_models, features_per_model, len(tables))
    # dead-end reporting tables: upstream changes there feed no model
    n_rep = int(rng.integers(2, 5))
    report_table = [int(t) for t in rng.choice(len(tables), size=n_rep, replace=True)]
    reports = [f"{tables[t]}_report_{i}" for i, t in enumerate(report_table)]
    exps = _EXPERIMENTS[int(rng.integers(len(_EXPERIMENTS)))]
    return System(
        sources=sources,
        tables=tables,
        table_source=table_source,
        table_rho=table_rho,
        table_volume=table_volume,
        transforms=drawn.transforms,
        transform_kind=drawn.transform_kind,
        transform_tables=drawn.transform_tables,
        features=drawn.features,
        reports=reports,
        report_table=report_table,
        models=models,
        experiments=(str(exps[0]), str(exps[1])),
        feature_names=[f.name for f in drawn.features],
    )
