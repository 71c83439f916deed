// Pure pieces of the RolloutCorrelator view (unit-tested in js/tests/rollouts.test.js).

/** Split the long decoded table into per-panel {x, cols} (rows are sorted by panel, ts). */
export function splitPanels(table, seriesNames) {
  const out = new Map();
  const n = table.numRows;
  const pid = table.columns.panel;
  let start = 0;
  for (let i = 1; i <= n; i++) {
    if (i === n || pid[i] !== pid[start]) {
      const cols = {};
      for (const s of seriesNames) {
        const c = table.columns[s];
        if (c) cols[s] = c.subarray(start, i);
      }
      out.set(pid[start], { x: table.columns.ts.subarray(start, i), cols });
      start = i;
    }
  }
  return out;
}

/** Finite [min, max] of several arrays, padded so a flat line sits mid-panel. */
export function extent(arrays) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  if (lo === Infinity) return null;
  if (hi === lo) {
    const pad = Math.abs(lo) * 0.05 || 1;
    return [lo - pad, hi + pad];
  }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

/** Linear map of [d0, d1] onto [r0, r1]. */
export function scale(d0, d1, r0, r1) {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** A step-after path (for traffic ramps) as a list of [x, y] points, extended to xEnd. */
export function stepPoints(ramp, xEnd) {
  const pts = [];
  for (let i = 0; i < ramp.length; i++) {
    const [t, s] = ramp[i];
    if (i > 0) pts.push([t, ramp[i - 1][1]]);
    pts.push([t, s]);
  }
  if (ramp.length && xEnd > ramp[ramp.length - 1][0]) pts.push([xEnd, ramp[ramp.length - 1][1]]);
  return pts;
}

/**
 * Stack the snapshot bands of one panel: rows of the long table [from, to) (sorted by ts,
 * snap) become {ts: Float64Array, snaps: [id...], lower: {id: Float64Array}, upper: {...}} where
 * at each time a snapshot's band spans [lower, upper] and the bands of that time stack to 1.
 */
export function stackBands(ts, snap, share, from, to) {
  const times = [];
  const ids = new Set();
  for (let i = from; i < to; i++) {
    if (!times.length || times[times.length - 1] !== ts[i]) times.push(ts[i]);
    ids.add(snap[i]);
  }
  const order = [...ids].sort((a, b) => a - b);
  const col = new Map(order.map((id) => [id, new Float64Array(times.length)]));
  let t = -1;
  for (let i = from; i < to; i++) {
    if (i === from || ts[i] !== ts[i - 1]) t++;
    col.get(snap[i])[t] += share[i];
  }
  const lower = {};
  const upper = {};
  const cum = new Float64Array(times.length);
  for (const id of order) {
    const s = col.get(id);
    lower[id] = Float64Array.from(cum);
    for (let k = 0; k < cum.length; k++) cum[k] += s[k];
    upper[id] = Float64Array.from(cum);
  }
  return { ts: Float64Array.from(times), snaps: order, lower, upper };
}

/** Row ranges [from, to) of each panel in a table sorted by panel: Map(panel -> [from, to]). */
export function panelRanges(panel) {
  const out = new Map();
  let start = 0;
  for (let i = 1; i <= panel.length; i++) {
    if (i === panel.length || panel[i] !== panel[start]) {
      out.set(panel[start], [start, i]);
      start = i;
    }
  }
  return out;
}

/** The snapshots to label: the ones near the anomaly and the compared pair, or all on demand. */
export function labelled(snapshots, all) {
  return snapshots.filter((s) => all || s.near || (s.role && s.role !== "named"));
}
