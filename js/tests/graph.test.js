import { describe, expect, it } from "vitest";
import { LAYOUT_PRESETS, buildElkGraph, cleanGraph, fallbackLayout, layoutGraph } from "../src/_graph/layout.js";
import { fitTransform, hitTest, legibleFit } from "../src/_graph/canvas.js";
import { fmt, logScale, paletteColor, textOn, toNum } from "../src/_graph/colors.js";
import { adjacency, inducedEdges, pathNodes, reach, roots } from "../src/_graph/walk.js";

const chain = (n) => ({
  nodes: Array.from({ length: n }, (_, i) => ({ id: `n${i}` })),
  edges: Array.from({ length: n - 1 }, (_, i) => ({ source: `n${i}`, target: `n${i + 1}` })),
});

describe("ELK input building", () => {
  it("drops dangling, duplicate and self edges and duplicate nodes", () => {
    const g = cleanGraph(
      [{ id: "a" }, { id: "b" }, { id: "a" }, { id: 3 }],
      [
        { source: "a", target: "b" },
        { source: "a", target: "b" },
        { source: "b", target: "b" },
        { source: "b", target: "zz" },
        { source: "b", target: 3 },
        { source: null, target: "a" },
      ],
    );
    expect(g.nodes.map((n) => n.id)).toEqual(["a", "b", "3"]);
    expect(g.edges).toEqual([
      { source: "a", target: "b" },
      { source: "b", target: "3" },
    ]);
    expect(g.dropped).toBe(4);
  });
  it("builds a layered, left-to-right graph with the requested node sizes", () => {
    const { nodes, edges } = chain(3);
    const g = buildElkGraph(nodes, edges, { preset: "lineage", size: (n) => ({ width: n.id === "n0" ? 50 : 10, height: 7 }) });
    expect(g.layoutOptions["elk.algorithm"]).toBe("layered");
    expect(g.layoutOptions["elk.direction"]).toBe("RIGHT");
    expect(g.children).toEqual([
      { id: "n0", width: 50, height: 7 },
      { id: "n1", width: 10, height: 7 },
      { id: "n2", width: 10, height: 7 },
    ]);
    expect(g.edges.map((e) => [e.sources[0], e.targets[0]])).toEqual([
      ["n0", "n1"],
      ["n1", "n2"],
    ]);
    expect(new Set(g.edges.map((e) => e.id)).size).toBe(2);
  });
  it("merges caller options over the preset and rejects an unknown preset", () => {
    const g = buildElkGraph([], [], { preset: "modelgraph", options: { "elk.direction": "DOWN" } });
    expect(g.layoutOptions["elk.direction"]).toBe("DOWN");
    expect(g.layoutOptions["elk.layered.wrapping.strategy"]).toBe(LAYOUT_PRESETS.modelgraph["elk.layered.wrapping.strategy"]);
    expect(() => buildElkGraph([], [], { preset: "nope" })).toThrow(/unknown layout preset/);
  });
});

describe("layout", () => {
  it("ELK places sources left of their targets (direction RIGHT)", async () => {
    const nodes = ["a", "b", "c", "d"].map((id) => ({ id }));
    const edges = [
      { source: "a", target: "c" },
      { source: "b", target: "c" },
      { source: "c", target: "d" },
    ];
    const L = await layoutGraph(nodes, edges, { preset: "lineage" });
    expect(L.engine).toBe("elk");
    const X = (id) => L.x[L.index.get(id)];
    expect(X("a")).toBeLessThan(X("c"));
    expect(X("b")).toBeLessThan(X("c"));
    expect(X("c")).toBeLessThan(X("d"));
    expect(L.edges).toHaveLength(3);
    for (const e of L.edges) expect(e.pts.length).toBeGreaterThanOrEqual(4);
    expect(L.width).toBeGreaterThan(0);
  });
  it("lays out a 1,000-node model graph with every node placed and no overlaps", async () => {
    const { nodes, edges } = chain(1000);
    for (let i = 4; i < 1000; i += 4) edges.push({ source: `n${i - 4}`, target: `n${i}` });
    const L = await layoutGraph(nodes, edges, { preset: "modelgraph", size: () => ({ width: 150, height: 34 }) });
    expect(L.ids).toHaveLength(1000);
    // wrapping keeps a long chain readable: not a 150,000-px strip
    expect(L.width / Math.max(L.height, 1)).toBeLessThan(20);
    const boxes = Array.from(L.ids, (_, i) => [L.x[i], L.y[i]]);
    const keys = new Set(boxes.map(([x, y]) => `${Math.round(x)},${Math.round(y)}`));
    expect(keys.size).toBe(1000);
  }, 60000);
  it("fallback layering respects edge direction and survives a cycle", () => {
    const L = fallbackLayout([{ id: "a" }, { id: "b" }, { id: "c" }], [
      { source: "a", target: "b" },
      { source: "b", target: "c" },
      { source: "c", target: "b" },
    ]);
    expect(L.ids).toHaveLength(3);
    expect(L.x[L.index.get("a")]).toBeLessThan(L.x[L.index.get("b")]);
  });
});

describe("walks", () => {
  // x -> a -> b -> out ; y -> b ; a -> side
  const edges = [
    { source: "x", target: "a" },
    { source: "a", target: "b" },
    { source: "b", target: "out" },
    { source: "y", target: "b" },
    { source: "a", target: "side" },
  ];
  const adj = adjacency(edges);
  it("walks upstream to the inputs and downstream to the output", () => {
    expect([...reach(adj, "b", "up").keys()].sort()).toEqual(["a", "b", "x", "y"]);
    expect([...reach(adj, "a", "down").keys()].sort()).toEqual(["a", "b", "out", "side"]);
    expect(reach(adj, "out", "up", 1)).toEqual(new Map([["out", 0], ["b", 1]]));
  });
  it("finds the nodes on paths between two nodes and the roots", () => {
    expect([...pathNodes(adj, ["x"], "out")].sort()).toEqual(["a", "b", "out", "x"]);
    expect(roots(["x", "a", "y", "b"].map((id) => ({ id })), adj).sort()).toEqual(["x", "y"]);
    expect(inducedEdges(edges, new Set(["a", "b", "x"]))).toHaveLength(2);
  });
});

describe("colour scale", () => {
  it("maps magnitudes on a log scale with zero at the floor and inf at the top", () => {
    const s = logScale([1e-3, 1, 1e3, 0, NaN, null]);
    expect(s.lo).toBeCloseTo(-3);
    expect(s.hi).toBeCloseTo(3);
    expect(s.t(1)).toBeCloseTo(0.5);
    expect(s.t(-1e3)).toBeCloseTo(1);
    expect(s.t(0)).toBe(0);
    expect(s.t(Infinity)).toBe(1);
    expect(Number.isNaN(s.t(NaN))).toBe(true);
    expect(s.color(NaN)).toBe("rgb(150,150,150)");
    expect(s.color(1e3)).toBe(paletteColor(1));
  });
  it("is monotone in |v| and never leaves [0,1]", () => {
    const vals = Array.from({ length: 200 }, () => 10 ** (Math.random() * 12 - 6));
    const s = logScale(vals);
    const sorted = [...vals].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) expect(s.t(sorted[i])).toBeGreaterThanOrEqual(s.t(sorted[i - 1]));
    for (const v of [1e-30, 1e30]) {
      expect(s.t(v)).toBeGreaterThanOrEqual(0);
      expect(s.t(v)).toBeLessThanOrEqual(1);
    }
  });
  it("handles a constant or empty input", () => {
    const s = logScale([5, 5]);
    expect(s.valid).toBe(true);
    expect(s.t(5)).toBeCloseTo(0.5);
    expect(logScale([NaN, null]).valid).toBe(false);
  });
  it("parses Python's non-finite encodings and formats compactly", () => {
    expect(toNum("inf")).toBe(Infinity);
    expect(toNum("-inf")).toBe(-Infinity);
    expect(Number.isNaN(toNum("nan"))).toBe(true);
    expect(toNum(null)).toBe(null);
    expect(fmt(1234567)).toBe("1.23e+6");
    expect(fmt(Infinity)).toBe("inf");
    expect(textOn("rgb(253,231,37)")).toBe("#111");
    expect(textOn("rgb(68,1,84)")).toBe("#fff");
  });
});

describe("canvas math", () => {
  it("fits a world into the viewport and hit-tests boxes", () => {
    const f = fitTransform(1000, 100, 500, 300, 0);
    expect(f.k).toBeCloseTo(0.5);
    expect(f.tx).toBeCloseTo(0);
    expect(f.ty).toBeCloseTo(125);
    const L = { x: [0, 100], y: [0, 0], w: [50, 50], h: [20, 20] };
    expect(hitTest(L, 10, 10)).toBe(0);
    expect(hitTest(L, 120, 5)).toBe(1);
    expect(hitTest(L, 75, 5)).toBe(-1);
  });
});

describe("large-graph options", () => {
  it("switches the lineage preset to cheap layering above the threshold only", () => {
    const small = chain(10);
    const big = chain(600);
    expect(buildElkGraph(small.nodes, small.edges, { preset: "lineage" }).layoutOptions["elk.layered.layering.strategy"]).toBeUndefined();
    const g = buildElkGraph(big.nodes, big.edges, { preset: "lineage" });
    expect(g.layoutOptions["elk.layered.layering.strategy"]).toBe("LONGEST_PATH");
    expect(g.layoutOptions["elk.direction"]).toBe("RIGHT");
    // an explicit caller option still wins
    expect(buildElkGraph(big.nodes, big.edges, { preset: "lineage", options: { "elk.layered.thoroughness": "5" } }).layoutOptions["elk.layered.thoroughness"]).toBe("5");
  });
});

describe("legibleFit", () => {
  it("never shrinks labels below minScale and cuts the height to the graph", () => {
    // a 4-node chain, wider than the view at scale 1
    const f = legibleFit(940, 54, 700, 180, 560, { pad: 16, minScale: 0.95 });
    expect(f.k).toBeCloseTo(0.95);
    expect(f.tx).toBe(16); // left-aligned: the sources stay in view
    expect(f.height).toBe(180); // not a 560 px canvas around one row of nodes
  });
  it("centres a small graph and caps the zoom", () => {
    const f = legibleFit(200, 100, 800, 180, 560, { pad: 16, minScale: 0.9, maxScale: 1.3 });
    expect(f.k).toBeCloseTo(1.3);
    expect(f.tx).toBeCloseTo((800 - 260) / 2);
    expect(f.height).toBe(180);
  });
});
