"""Serving rows: features from the lineage (clean and as the broken pipeline delivers them).

Both versions are drawn from the same random numbers: the clean one is what the world really
looked like (labels come from it), the faulty one is what the model was served. Their
difference is exactly the planted upstream fault, so it reaches exactly the downstream features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .system import System


@dataclass
class SourceFault:
    source: int
    subtype: str  # unit_x100, unit_x1000, default_fill, sign_flip
    frac: float
    onset: int
    default: float = 0.0

    def apply(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if self.subtype.startswith("unit_x"):
            return np.where(rows, x * float(self.subtype[len("unit_x") :]), x)
        if self.subtype == "default_fill":
            return np.where(rows, self.default, x)
        if self.subtype == "sign_flip":
            return np.where(rows, -x, x)
        raise ValueError(self.subtype)  # pragma: no cover


@dataclass
class CoverageFault:
    transform: int
    feature: int
    frac: float
    onset: int


@dataclass
class Drift:
    feature: int
    start: int
    ramp_hours: int
    shift_sd: float

    def at(self, hour: int) -> float:
        if hour < self.start:
            return 0.0
        return self.shift_sd * min(1.0, (hour - self.start + 1) / self.ramp_hours)


@dataclass
class World:
    """The time-varying state of the pipeline: faults and organic drift."""

    source_fault: SourceFault | None = None
    coverage: CoverageFault | None = None
    drifts: list[Drift] = field(default_factory=list)


@dataclass
class FeatureBatch:
    clean: np.ndarray  # (n, F) float32
    served: np.ndarray  # (n, F) float32
    table_sum: np.ndarray  # (T,) sum of served table values
    table_cnt: np.ndarray  # (T,)


class FeatureGen:
    """Vectorized per-model feature generator (arrays precomputed from the FeatureSpecs)."""

    def __init__(self, system: System, feats: list[int]) -> None:
        self.system = system
        self.feats = np.asarray(feats)
        fs = [system.features[i] for i in feats]
        n = len(fs)
        self.n_tables = len(system.tables)
        self.tab = np.zeros((2, n), dtype=np.int64)
        self.loc = np.zeros((2, n))
        self.scale = np.zeros((2, n))
        self.valid = np.zeros((2, n), dtype=bool)
        for j, f in enumerate(fs):
            for k, t in enumerate(f.tables):
                self.tab[k, j] = t
                self.loc[k, j] = f.loc[k]
                self.scale[k, j] = f.scale[k]
                self.valid[k, j] = True
        self.rho = np.asarray(system.table_rho)[self.tab]
        self.coef = np.asarray([f.coef for f in fs])
        self.amp = np.asarray([f.season_amp for f in fs])
        self.phase = np.asarray([f.season_phase for f in fs])
        self.default = np.asarray([f.default for f in fs])
        kinds = [system.transform_kind[f.transform] for f in fs]
        self.is_slog = np.asarray([k == "slog" for k in kinds])
        self.is_clip = np.asarray([k == "clip" for k in kinds])
        center = self.loc[0] + self.coef * self.loc[1]
        spread = np.sqrt(self.scale[0] ** 2 + (self.coef * self.scale[1]) ** 2)
        self.lo = center - 3.0 * spread
        self.hi = center + 3.0 * spread
        self.src_of_slot = np.asarray(system.table_source)[self.tab]
        self.pos = {int(f): j for j, f in enumerate(feats)}

    def _finish(self, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        p = x0 + self.coef * x1
        out = np.where(self.is_slog, np.sign(p) * np.log1p(np.abs(p)), p)
        return np.where(self.is_clip, np.clip(out, self.lo, self.hi), out)

    def draw(self, rng: np.random.Generator, n: int, hour: int, world: World) -> FeatureBatch:
        hod = hour % 24
        season = 1.0 + self.amp * np.sin(2 * np.pi * (hod + self.phase) / 24.0)
        z = rng.standard_normal((n, self.n_tables))
        u = rng.standard_normal((2, n, self.tab.shape[1]))
        broken_rows = rng.random(n)
        cov_rows = rng.random(n)
        x = []
        for k in range(2):
            mean = self.loc[k] * season
            if k == 0:
                for d in world.drifts:
                    j = self.pos.get(d.feature)
                    if j is not None:
                        mean = mean.copy()
                        mean[j] += d.at(hour) * self.scale[0, j]
            noise = self.rho[k] * z[:, self.tab[k]] + np.sqrt(1 - self.rho[k] ** 2) * u[k]
            x.append(mean + self.scale[k] * noise)
        clean = self._finish(x[0], x[1])
        served_x = [x[0], x[1]]
        sf = world.source_fault
        if sf is not None and hour >= sf.onset:
            rows = (broken_rows < sf.frac)[:, None]
            for k in range(2):
                slots = (self.src_of_slot[k] == sf.source) & self.valid[k]
                if slots.any():
                    served_x[k] = np.where(slots[None, :], sf.apply(x[k], rows), x[k])
        served = self._finish(served_x[0], served_x[1])
        cov = world.coverage
        if cov is not None and hour >= cov.onset and cov.feature in self.pos:
            j = self.pos[cov.feature]
            served[:, j] = np.where(cov_rows < cov.frac, self.default[j], served[:, j])
        tsum = np.zeros(self.n_tables)
        tcnt = np.zeros(self.n_tables)
        for k in range(2):
            v = self.valid[k]
            tsum += np.bincount(
                self.tab[k][v], weights=served_x[k][:, v].sum(0), minlength=self.n_tables
            )
            tcnt += np.bincount(self.tab[k][v], minlength=self.n_tables) * n
        return FeatureBatch(
            clean=clean.astype(np.float32),
            served=served.astype(np.float32),
            table_sum=tsum,
            table_cnt=tcnt,
        )
