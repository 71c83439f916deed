// Graph walks shared by the DAG views: parents/children maps, upstream and downstream closure
// (the "walk to the inputs / to the output" buttons), and the k-hop neighbourhood the lineage
// view starts from. Edges point the way data flows (source -> target).

/** {parents, children}: Map<string, string[]> built once per graph. */
export function adjacency(edges) {
  const parents = new Map();
  const children = new Map();
  for (const e of edges || []) {
    const s = String(e.source);
    const t = String(e.target);
    if (!children.has(s)) children.set(s, []);
    if (!parents.has(t)) parents.set(t, []);
    children.get(s).push(t);
    parents.get(t).push(s);
  }
  return { parents, children };
}

/**
 * Every node reachable from `start` following parents ("up") or children ("down"),
 * `start` included, with the hop distance: Map<id, hops>. `maxHops` bounds the walk.
 */
export function reach(adj, start, direction = "up", maxHops = Infinity) {
  const next = direction === "up" ? adj.parents : adj.children;
  const dist = new Map();
  const starts = Array.isArray(start) ? start : [start];
  const queue = [];
  for (const s of starts) {
    if (s == null) continue;
    dist.set(String(s), 0);
    queue.push(String(s));
  }
  let head = 0;
  while (head < queue.length) {
    const u = queue[head++];
    const d = dist.get(u);
    if (d >= maxHops) continue;
    for (const v of next.get(u) || []) {
      if (!dist.has(v)) {
        dist.set(v, d + 1);
        queue.push(v);
      }
    }
  }
  return dist;
}

/** Edges of `edges` with both ends inside `ids` (a Set or Map). */
export function inducedEdges(edges, ids) {
  return (edges || []).filter((e) => ids.has(String(e.source)) && ids.has(String(e.target)));
}

/** Nodes that lie on some path from any of `sources` down to `target`. */
export function pathNodes(adj, sources, target) {
  const down = reach(adj, sources, "down");
  const up = reach(adj, target, "up");
  const out = new Set();
  for (const id of down.keys()) if (up.has(id)) out.add(id);
  return out;
}

/** Ids with no parents in the graph (inputs / placeholders / raw sources). */
export function roots(nodes, adj) {
  return nodes.map((n) => String(n.id)).filter((id) => !(adj.parents.get(id) || []).length);
}
