// Pure pieces of the AnomalyTimeline view (unit-tested in js/tests/timeline.test.js).

/** The anomaly window under time x, preferring the most severe when windows overlap. */
export function windowAt(windows, x) {
  let best = null;
  for (const w of windows || []) {
    if (x >= w.onset && x <= w.end) {
      if (!best || (w.severity ?? 0) > (best.severity ?? 0)) best = w;
    }
  }
  return best;
}

/** Pixel box [left, width] of a window clipped to the plot, or null when fully outside. */
export function bandBox(w, toPx, plotWidth) {
  const a = toPx(w.onset);
  const b = toPx(w.end);
  const left = Math.max(0, Math.min(a, b));
  const right = Math.min(plotWidth, Math.max(a, b));
  if (!(right >= 0 && left <= plotWidth) || right < left) return null;
  return { left, width: Math.max(2, right - left) };
}

/** Decoded columns -> uPlot data (x plus value and optional band columns; NaN -> null gap). */
export function toUplotData(x, cols, names) {
  const out = [x];
  for (const name of names) {
    const c = cols[name];
    const arr = new Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = c ? c[i] : NaN;
      arr[i] = Number.isFinite(v) ? v : null;
    }
    out.push(arr);
  }
  return out;
}

/** The ordered series names present in a decoded table (value first). */
export function seriesNames(columns) {
  return ["value", "baseline", "lower", "upper"].filter((n) => n in columns);
}

/** A selection {start, end} in ISO from two times in ms (order-insensitive). */
export function selectionFromRange(a, b) {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  return { start: new Date(lo).toISOString(), end: new Date(hi).toISOString() };
}

/** Should a new detail request be sent for [lo, hi]? Skips tiny moves and the full range. */
export function needsDetail(lo, hi, full, last) {
  if (!(hi > lo)) return false;
  const span = full[1] - full[0];
  if (lo <= full[0] && hi >= full[1]) return false;
  if (last && Math.abs(last[0] - lo) < span * 1e-6 && Math.abs(last[1] - hi) < span * 1e-6) {
    return false;
  }
  return true;
}
