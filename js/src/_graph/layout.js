// DAG layout for the model-graph and lineage views: builds the ELK input from plain
// {id}/{source,target} lists and turns ELK's answer into flat arrays the canvas renderer
// draws without walking nested objects. ELK's bundled build runs in-thread (no web worker),
// so the notebook needs no extra asset; a longest-path fallback keeps the view usable if
// ELK ever throws on a pathological graph.
import ELK from "elkjs/lib/elk.bundled.js";

let elkInstance = null;
function elk() {
  if (!elkInstance) elkInstance = new ELK();
  return elkInstance;
}

/** Layout options per view kind; exported so tests can assert the direction and algorithm. */
export const LAYOUT_PRESETS = {
  // model graphs are long chains: wrap them into rows so 1,000 ops fit a screen
  modelgraph: {
    "elk.algorithm": "layered",
    "elk.direction": "RIGHT",
    "elk.layered.wrapping.strategy": "MULTI_EDGE",
    "elk.aspectRatio": "1.6",
    "elk.spacing.nodeNode": "14",
    "elk.layered.spacing.nodeNodeBetweenLayers": "28",
    "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
    "elk.edgeRouting": "POLYLINE",
    "elk.layered.thoroughness": "1",
  },
  // lineage reads left (sources) to right (the feature)
  lineage: {
    "elk.algorithm": "layered",
    "elk.direction": "RIGHT",
    "elk.spacing.nodeNode": "16",
    "elk.layered.spacing.nodeNodeBetweenLayers": "48",
    "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
    "elk.edgeRouting": "POLYLINE",
    "elk.layered.thoroughness": "2",
  },
};

/**
 * Extra options per preset once a graph has more than LARGE_GRAPH nodes: cheaper layering and
 * one crossing-minimisation pass keep a fully expanded 2,000-node lineage interactive; small
 * graphs (the usual focused view) keep the thorough settings.
 */
export const LARGE_GRAPH = 500;
export const LARGE_OPTIONS = {
  modelgraph: {},
  lineage: { "elk.layered.layering.strategy": "LONGEST_PATH", "elk.layered.thoroughness": "1" },
};

/**
 * Normalise node and edge lists: string ids, first occurrence wins, edges whose ends are
 * unknown, self loops and duplicates dropped (ELK rejects dangling edges outright, and a
 * lineage export routinely references nodes outside the shown subgraph).
 */
export function cleanGraph(nodes, edges) {
  const seen = new Set();
  const outNodes = [];
  for (const n of nodes || []) {
    if (n == null || n.id == null) continue;
    const id = String(n.id);
    if (seen.has(id)) continue;
    seen.add(id);
    outNodes.push({ ...n, id });
  }
  const edgeKeys = new Set();
  const outEdges = [];
  let dropped = 0;
  for (const e of edges || []) {
    if (e == null || e.source == null || e.target == null) {
      dropped++;
      continue;
    }
    const s = String(e.source);
    const t = String(e.target);
    const key = `${s}\u0000${t}`;
    if (s === t || !seen.has(s) || !seen.has(t) || edgeKeys.has(key)) {
      dropped++;
      continue;
    }
    edgeKeys.add(key);
    outEdges.push({ source: s, target: t });
  }
  return { nodes: outNodes, edges: outEdges, dropped };
}

/**
 * The ELK JSON graph for `nodes`/`edges`. `size(node)` gives {width, height}; `preset` names a
 * LAYOUT_PRESETS entry or is an options object.
 */
export function buildElkGraph(nodes, edges, { size = () => ({ width: 120, height: 28 }), preset = "lineage", options = {} } = {}) {
  const clean = cleanGraph(nodes, edges);
  const base = typeof preset === "string" ? LAYOUT_PRESETS[preset] : preset;
  if (!base) throw new Error(`unknown layout preset ${preset}; use one of ${Object.keys(LAYOUT_PRESETS).join(", ")}`);
  const large = typeof preset === "string" && clean.nodes.length > LARGE_GRAPH ? LARGE_OPTIONS[preset] || {} : {};
  return {
    id: "__root__",
    layoutOptions: { ...base, ...large, ...options },
    children: clean.nodes.map((n) => {
      const s = size(n);
      return { id: n.id, width: s.width, height: s.height };
    }),
    edges: clean.edges.map((e, i) => ({ id: `e${i}`, sources: [e.source], targets: [e.target] })),
  };
}

/** Flatten ELK's answer into {ids, x, y, w, h (Float64Array), index, edges, width, height}. */
export function flattenLayout(laid) {
  const children = laid.children || [];
  const n = children.length;
  const ids = new Array(n);
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const w = new Float64Array(n);
  const h = new Float64Array(n);
  const index = new Map();
  for (let i = 0; i < n; i++) {
    const c = children[i];
    ids[i] = c.id;
    x[i] = c.x || 0;
    y[i] = c.y || 0;
    w[i] = c.width || 0;
    h[i] = c.height || 0;
    index.set(c.id, i);
  }
  const edges = [];
  const elkEdges = laid.edges || [];
  for (let k = 0; k < elkEdges.length; k++) {
    const e = elkEdges[k];
    const s = index.get(e.sources[0]);
    const t = index.get(e.targets[0]);
    if (s === undefined || t === undefined) continue;
    const pts = [];
    const sec = e.sections && e.sections[0];
    if (sec) {
      pts.push(sec.startPoint.x, sec.startPoint.y);
      for (const b of sec.bendPoints || []) pts.push(b.x, b.y);
      pts.push(sec.endPoint.x, sec.endPoint.y);
    } else {
      pts.push(x[s] + w[s], y[s] + h[s] / 2, x[t], y[t] + h[t] / 2);
    }
    edges.push({ s, t, pts });
  }
  return { ids, x, y, w, h, index, edges, width: laid.width || 0, height: laid.height || 0 };
}

/**
 * Longest-path layering left to right: no crossing minimisation, but linear time and never
 * fails (cycles are broken by visiting order). Used when ELK throws.
 */
export function fallbackLayout(nodes, edges, { size = () => ({ width: 120, height: 28 }), gapX = 48, gapY = 14 } = {}) {
  const clean = cleanGraph(nodes, edges);
  const ids = clean.nodes.map((n) => n.id);
  const idx = new Map(ids.map((id, i) => [id, i]));
  const indeg = new Int32Array(ids.length);
  const out = ids.map(() => []);
  for (const e of clean.edges) {
    out[idx.get(e.source)].push(idx.get(e.target));
    indeg[idx.get(e.target)]++;
  }
  const layer = new Int32Array(ids.length);
  const queue = [];
  for (let i = 0; i < ids.length; i++) if (indeg[i] === 0) queue.push(i);
  const done = new Uint8Array(ids.length);
  let head = 0;
  for (;;) {
    while (head < queue.length) {
      const u = queue[head++];
      done[u] = 1;
      for (const v of out[u]) {
        layer[v] = Math.max(layer[v], layer[u] + 1);
        if (--indeg[v] === 0) queue.push(v);
      }
    }
    const rest = ids.findIndex((_, i) => !done[i] && !queue.includes(i));
    if (rest < 0) break;
    queue.push(rest); // break a cycle
  }
  const sizes = clean.nodes.map(size);
  const nLayers = ids.length ? Math.max(...layer) + 1 : 0;
  const layerW = new Float64Array(nLayers);
  for (let i = 0; i < ids.length; i++) layerW[layer[i]] = Math.max(layerW[layer[i]], sizes[i].width);
  const layerX = new Float64Array(nLayers);
  for (let l = 1; l < nLayers; l++) layerX[l] = layerX[l - 1] + layerW[l - 1] + gapX;
  const cursor = new Float64Array(nLayers);
  const children = ids.map((id, i) => {
    const l = layer[i];
    const c = { id, x: layerX[l], y: cursor[l], width: sizes[i].width, height: sizes[i].height };
    cursor[l] += sizes[i].height + gapY;
    return c;
  });
  const laid = {
    children,
    edges: clean.edges.map((e, i) => ({ id: `e${i}`, sources: [e.source], targets: [e.target] })),
    width: nLayers ? layerX[nLayers - 1] + layerW[nLayers - 1] : 0,
    height: Math.max(0, ...cursor),
  };
  return flattenLayout(laid);
}

/** Lay out with ELK; returns the flat layout plus `ms` and `engine` ("elk" or "fallback"). */
export async function layoutGraph(nodes, edges, opts = {}) {
  const t0 = typeof performance !== "undefined" ? performance.now() : Date.now();
  let flat;
  let engine = "elk";
  try {
    const graph = buildElkGraph(nodes, edges, opts);
    const laid = await elk().layout(graph);
    flat = flattenLayout(laid);
  } catch (err) {
    engine = "fallback";
    flat = fallbackLayout(nodes, edges, opts);
    flat.error = String(err && err.message ? err.message : err);
  }
  const t1 = typeof performance !== "undefined" ? performance.now() : Date.now();
  flat.ms = t1 - t0;
  flat.engine = engine;
  return flat;
}
