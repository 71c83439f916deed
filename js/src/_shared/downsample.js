// Pure helpers for time series in the browser (unit-tested; mirrors hawknb/widgets/_downsample.py).
// Stable API:
//   lowerBound(xs, x) -> first index i with xs[i] >= x (xs sorted ascending)
//   sliceRange(xs, lo, hi) -> [i0, i1)  indices of xs within [lo, hi]
//   minMaxDownsample(xs, ys, nBuckets) -> Int32Array of kept indices (sorted): per bucket of
//       equal x-width the first, min, max and last finite point, and one NaN point per bucket that
//       has a gap, so spikes and gaps both survive.
//   spliceDetail(overview, detail, lo, hi) -> {x, cols}: overview points outside [lo, hi] and
//       the detail points inside it (both {x: Float64Array, cols: {name: Float64Array}}).
export function lowerBound(xs, x) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function sliceRange(xs, lo, hi) {
  if (hi < lo) [lo, hi] = [hi, lo];
  const i0 = lowerBound(xs, lo);
  let i1 = lowerBound(xs, hi);
  while (i1 < xs.length && xs[i1] <= hi) i1++;
  return [i0, i1];
}

export function minMaxDownsample(xs, ys, nBuckets) {
  const n = xs.length;
  if (n === 0) return new Int32Array(0);
  if (nBuckets < 1) throw new RangeError("nBuckets must be >= 1");
  if (n <= nBuckets * 2) return Int32Array.from({ length: n }, (_, i) => i);
  const x0 = xs[0];
  const span = xs[n - 1] - x0 || 1;
  const keep = [];
  let b = -1;
  let first = -1, last = -1, imin = -1, imax = -1, inan = -1;
  const flush = () => {
    if (b < 0) return;
    const s = new Set([first, imin, imax, last, inan].filter((i) => i >= 0));
    for (const i of [...s].sort((a, c) => a - c)) keep.push(i);
  };
  for (let i = 0; i < n; i++) {
    const bi = Math.min(nBuckets - 1, Math.floor(((xs[i] - x0) / span) * nBuckets));
    if (bi !== b) {
      flush();
      b = bi;
      first = last = imin = imax = inan = -1;
    }
    const y = ys[i];
    if (!Number.isFinite(y)) {
      if (inan < 0) inan = i;
      continue;
    }
    if (first < 0) first = i;
    last = i;
    if (imin < 0 || y < ys[imin]) imin = i;
    if (imax < 0 || y > ys[imax]) imax = i;
  }
  flush();
  return Int32Array.from(keep);
}

export function spliceDetail(overview, detail, lo, hi) {
  const [a0, a1] = sliceRange(overview.x, lo, hi);
  const [d0, d1] = sliceRange(detail.x, lo, hi);
  const n = a0 + (d1 - d0) + (overview.x.length - a1);
  const x = new Float64Array(n);
  const cols = {};
  const names = Object.keys(overview.cols);
  for (const name of names) cols[name] = new Float64Array(n);
  let k = 0;
  const put = (src, i0, i1) => {
    for (let i = i0; i < i1; i++, k++) {
      x[k] = src.x[i];
      for (const name of names) {
        const c = src.cols[name];
        cols[name][k] = c ? c[i] : NaN;
      }
    }
  };
  put(overview, 0, a0);
  put(detail, d0, d1);
  put(overview, a1, overview.x.length);
  return { x, cols };
}
