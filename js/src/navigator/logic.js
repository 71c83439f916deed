// Pure pieces of the InvestigationNavigator view (unit-tested in js/tests/navigator.test.js).

/** Children lists keyed by parent id ("" for roots), keeping input order. */
export function childrenOf(steps) {
  const ids = new Set(steps.map((s) => s.id));
  const out = new Map();
  for (const s of steps) {
    const p = s.parent && ids.has(s.parent) ? s.parent : "";
    if (!out.has(p)) out.set(p, []);
    out.get(p).push(s);
  }
  return out;
}

/** Steps from the root to `id` (breadcrumbs); [] for an unknown id; stops on a cycle. */
export function pathTo(steps, id) {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const out = [];
  const seen = new Set();
  let cur = byId.get(id);
  while (cur && !seen.has(cur.id)) {
    seen.add(cur.id);
    out.push(cur);
    cur = cur.parent ? byId.get(cur.parent) : null;
  }
  return out.reverse();
}

export const STATUS_ICON = {
  done: "✔",
  skipped: "⤼",
  warning: "⚠",
  failed: "✖",
  running: "…",
  pending: "○",
};

/** A counts summary {done: n, ...} of the statuses. */
export function statusCounts(steps) {
  const out = {};
  for (const s of steps) out[s.status] = (out[s.status] || 0) + 1;
  return out;
}

/** Index of step `id`'s view in `withViews` (the view stack's children), null when it has none. */
export function viewIndex(withViews, id) {
  const i = (withViews || []).indexOf(id);
  return i < 0 ? null : i;
}
