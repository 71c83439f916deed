// Colour scales for the DAG views. Activation/weight statistics span many decades (1e-3 to
// 1e12 when something blows up), so a linear scale would paint everything but the outlier the
// same colour: the model graph colours by log10 of the magnitude.

// viridis-like stops (perceptually ordered, readable on light and dark backgrounds)
const STOPS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

function lerp(a, b, t) {
  return a + (b - a) * t;
}

/** rgb() string for t in [0, 1] along the palette (clamped). */
export function paletteColor(t) {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(u));
  const f = u - i;
  const a = STOPS[i];
  const b = STOPS[i + 1];
  return `rgb(${Math.round(lerp(a[0], b[0], f))},${Math.round(lerp(a[1], b[1], f))},${Math.round(lerp(a[2], b[2], f))})`;
}

/**
 * A log10 scale over the magnitudes of the finite values. Returns {lo, hi, t(v), color(v),
 * valid}: `t` maps to [0,1]; non-finite or missing values give t = NaN and colour `missing`.
 * Zero (common for change_vs_previous) sits at the floor; values below `floor` are clamped so
 * one exact zero cannot stretch the scale by 300 decades.
 */
export function logScale(values, { floor = 1e-12, missing = "rgb(150,150,150)" } = {}) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v == null || !Number.isFinite(v) || v === 0) continue;
    const m = Math.log10(Math.max(Math.abs(v), floor));
    if (m < lo) lo = m;
    if (m > hi) hi = m;
  }
  const valid = Number.isFinite(lo);
  if (!valid) {
    lo = 0;
    hi = 1;
  } else if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  }
  const t = (v) => {
    if (v === Infinity || v === -Infinity) return 1; // an overflow is the top of any scale
    if (v == null || !Number.isFinite(v)) return Number.NaN;
    const a = Math.abs(v);
    if (a === 0) return 0;
    return Math.min(1, Math.max(0, (Math.log10(Math.max(a, floor)) - lo) / (hi - lo)));
  };
  const color = (v) => {
    const u = t(v);
    return Number.isNaN(u) ? missing : paletteColor(u);
  };
  return { lo, hi, t, color, valid };
}

/** Black or white text, whichever reads better on an rgb(...) fill. */
export function textOn(rgb) {
  const m = /rgb\((\d+),(\d+),(\d+)\)/.exec(rgb || "");
  if (!m) return "#000";
  const [r, g, b] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#111" : "#fff";
}

/** A stat value from JSON: numbers pass, "nan"/"inf"/"-inf" strings (Python's encoding of
 * non-finite values, which JSON cannot carry) become NaN/Infinity, anything else null. */
export function toNum(v) {
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const s = v.trim().toLowerCase();
    if (s === "nan") return Number.NaN;
    if (s === "inf" || s === "+inf" || s === "infinity") return Infinity;
    if (s === "-inf" || s === "-infinity") return -Infinity;
    const f = Number(s);
    return Number.isNaN(f) ? null : f;
  }
  return null;
}

/** Compact number formatting for labels and tables (1.2e+06, 0.0031, 42.5). */
export function fmt(v, digits = 3) {
  if (v == null) return "—";
  if (typeof v !== "number") return String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toString();
}
