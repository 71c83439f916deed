// Pure table logic of the feature ranking: columns out of an Arrow table, stable sorting with
// missing values last, text filtering, and the virtual-window arithmetic that keeps only the
// visible rows in the DOM (thousands of features stay fluid).

/**
 * Columns of a decoded table (`decodeTable` from _shared/arrow.js: {names, columns}) as
 * [{name, kind, values}]; kind is "num" (Float64Array, null -> NaN) or "str" (Array).
 */
export function columnsFromDecoded(decoded) {
  return decoded.names.map((name) => {
    const values = decoded.columns[name];
    if (values instanceof Float64Array) return { name, kind: "num", values };
    return { name, kind: "str", values: Array.from(values, (v) => (v == null ? null : String(v))) };
  });
}

/** Order columns for display: feature first, then rank/score, then the rest as given. */
export function displayOrder(names) {
  const first = ["feature", "rank", "score", "confidence"];
  const head = first.filter((n) => names.includes(n));
  return [...head, ...names.filter((n) => !head.includes(n))];
}

/**
 * The default columns: `wanted` that the table has, in `wanted`'s order. Empty (show them all)
 * when that leaves no more than the feature name, e.g. for a table of other columns.
 */
export function compactColumns(names, wanted) {
  const have = new Set(names);
  const out = wanted.filter((n) => have.has(n));
  return out.filter((n) => n !== "feature").length ? out : [];
}

/** CSS grid columns: the evidence text gets the room, numbers stay narrow. */
export function gridTemplate(columns, hasSpark = false, hasDist = false) {
  return columns
    .map((c) =>
      c.name === "evidence" ? "minmax(280px, 5fr)" : c.name === "feature" ? "minmax(140px, 2fr)" : c.name === "rank" ? "36px" : c.kind === "num" ? "minmax(64px, 1fr)" : "minmax(120px, 3fr)",
    )
    .concat(hasSpark ? ["90px"] : [], hasDist ? ["90px"] : [])
    .join(" ");
}

/** A 0..1 share as a percentage ("29%"); missing values as an en dash. */
export function formatShare(v) {
  if (v == null || Number.isNaN(v)) return "–";
  return `${Math.round(v * 100)}%`;
}

/** The initial sort: rank ascending if present, else score descending, else input order. */
export function defaultSort(names) {
  if (names.includes("rank")) return { key: "rank", dir: 1 };
  if (names.includes("score")) return { key: "score", dir: -1 };
  return { key: null, dir: 1 };
}

function missing(v) {
  return v == null || (typeof v === "number" && Number.isNaN(v));
}

/**
 * Indices `idx` sorted by `column.values` in direction `dir` (1 asc, -1 desc); stable, and
 * missing values (null/NaN) always last whatever the direction, so a sort never hides the
 * informative rows under a block of blanks.
 */
export function sortIndices(idx, column, dir = 1) {
  const out = Int32Array.from(idx);
  if (!column) return out;
  const vals = column.values;
  const pos = new Int32Array(vals.length);
  for (let i = 0; i < out.length; i++) pos[out[i]] = i;
  const arr = Array.from(out);
  arr.sort((a, b) => {
    const va = vals[a];
    const vb = vals[b];
    const ma = missing(va);
    const mb = missing(vb);
    if (ma || mb) {
      if (ma && mb) return pos[a] - pos[b];
      return ma ? 1 : -1;
    }
    let c;
    if (column.kind === "num") c = va - vb;
    else c = va < vb ? -1 : va > vb ? 1 : 0;
    if (c !== 0) return c * dir;
    return pos[a] - pos[b];
  });
  return Int32Array.from(arr);
}

/**
 * Row indices (in `order`) whose searchable text contains every whitespace-separated term of
 * `query` (case-insensitive). Searchable text = all string columns (feature, evidence, ...).
 */
export function filterIndices(order, columns, query) {
  const terms = String(query || "")
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean);
  if (!terms.length) return Int32Array.from(order);
  const strCols = columns.filter((c) => c.kind === "str");
  const out = [];
  for (const i of order) {
    let text = "";
    for (const c of strCols) if (c.values[i] != null) text += `${c.values[i].toLowerCase()}\u0001`;
    if (terms.every((t) => text.includes(t))) out.push(i);
  }
  return Int32Array.from(out);
}

/**
 * Which rows to put in the DOM: [start, end) plus the pixel offset of `start`, for a list of
 * `total` rows of `rowHeight` px scrolled to `scrollTop` in a `viewport`-px window, with
 * `overscan` extra rows each side. `totalHeight` sizes the scroll spacer.
 */
export function virtualWindow({ scrollTop, viewport, rowHeight, total, overscan = 6 }) {
  if (!(rowHeight > 0)) throw new Error(`virtualWindow: rowHeight must be > 0, got ${rowHeight}`);
  const n = Math.max(0, Math.floor(total || 0));
  const top = Math.max(0, Math.min(Number(scrollTop) || 0, Math.max(0, n * rowHeight - viewport)));
  const first = Math.floor(top / rowHeight);
  const visible = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(n, first + visible + overscan);
  return { start, end, offsetTop: start * rowHeight, totalHeight: n * rowHeight };
}

/** Shared-bin histograms of two samples (before/after) with `bins` bins over their joint range. */
export function histogramPair(before, after, bins = 20) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const arr of [before, after])
    for (const v of arr || []) {
      if (v == null || !Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  if (!Number.isFinite(lo)) return { edges: [], before: [], after: [] };
  if (hi - lo < 1e-12) {
    lo -= 0.5;
    hi += 0.5;
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  const count = (arr) => {
    const c = new Array(bins).fill(0);
    for (const v of arr || []) {
      if (v == null || !Number.isFinite(v)) continue;
      c[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]++;
    }
    return c;
  };
  return { edges, before: count(before), after: count(after) };
}
