// Which lineage nodes are on screen: the k-hop upstream neighbourhood of the focus feature,
// the ranked root-cause candidates with the paths that connect them to the focus (a candidate
// five hops up must not be hidden by the hop limit), and whatever the user expanded. Pure
// functions so the expand/collapse rules are unit-tested without a browser.
import { adjacency, pathNodes, reach } from "../_graph/walk.js";

/** The initial visible set. With no focus every node is shown (the whole lineage). */
export function initialVisible(nodeIds, edges, { focus = null, hops = 2, pinned = [] } = {}) {
  const ids = new Set(nodeIds.map(String));
  if (focus == null || !ids.has(String(focus))) return ids;
  const adj = adjacency(edges);
  const out = new Set(reach(adj, String(focus), "up", hops).keys());
  const pins = pinned.map(String).filter((p) => ids.has(p));
  if (pins.length) {
    for (const id of pathNodes(adj, pins, String(focus))) out.add(id);
    for (const p of pins) out.add(p);
  }
  return out;
}

/** Parents of `id` not yet visible (what its "+" would add). */
export function hiddenParents(adj, visible, id) {
  return (adj.parents.get(String(id)) || []).filter((p) => !visible.has(p));
}

/** Visible set after expanding one node's parents. */
export function expand(adj, visible, id) {
  const out = new Set(visible);
  for (const p of adj.parents.get(String(id)) || []) out.add(p);
  return out;
}

/**
 * Visible set after collapsing everything upstream of `id`, except nodes still reachable
 * upstream from the focus along visible nodes that avoid `id` (another branch needs them).
 */
export function collapse(adj, visible, id, focus = null) {
  const key = String(id);
  const up = new Set();
  const stack = [key];
  while (stack.length) {
    const u = stack.pop();
    for (const p of adj.parents.get(u) || []) {
      if (visible.has(p) && !up.has(p) && p !== key) {
        up.add(p);
        stack.push(p);
      }
    }
  }
  const keep = new Set();
  if (focus != null && String(focus) !== key && visible.has(String(focus))) {
    const st = [String(focus)];
    keep.add(String(focus));
    while (st.length) {
      const u = st.pop();
      for (const p of adj.parents.get(u) || []) {
        if (p === key || !visible.has(p) || keep.has(p)) continue;
        keep.add(p);
        st.push(p);
      }
    }
  }
  const out = new Set();
  for (const v of visible) if (!up.has(v) || keep.has(v)) out.add(v);
  return out;
}

/** Index of the first timestamp at or after `onset` (-1 when none or no onset). */
export function onsetIndex(ts, onset) {
  if (onset == null || !ts || !ts.length) return -1;
  for (let i = 0; i < ts.length; i++) if (ts[i] >= onset) return i;
  return -1;
}
