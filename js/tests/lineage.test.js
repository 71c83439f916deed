import { describe, expect, it } from "vitest";
import { adjacency } from "../src/_graph/walk.js";
import { collapse, expand, hiddenParents, initialVisible, onsetIndex } from "../src/lineage/state.js";

// s1 -> t1 -> j1 -> f ; s2 -> t2 -> j1 ; s3 -> t3 -> t1 ; j1 -> other
const edges = [
  ["s1", "t1"],
  ["t1", "j1"],
  ["j1", "f"],
  ["s2", "t2"],
  ["t2", "j1"],
  ["s3", "t3"],
  ["t3", "t1"],
  ["j1", "other"],
].map(([source, target]) => ({ source, target }));
const ids = ["s1", "s2", "s3", "t1", "t2", "t3", "j1", "f", "other"];
const adj = adjacency(edges);
const sorted = (s) => [...s].sort();

describe("initial visible set", () => {
  it("shows k hops upstream of the focus", () => {
    expect(sorted(initialVisible(ids, edges, { focus: "f", hops: 1 }))).toEqual(["f", "j1"]);
    expect(sorted(initialVisible(ids, edges, { focus: "f", hops: 2 }))).toEqual(["f", "j1", "t1", "t2"]);
  });
  it("pins candidates beyond the hop limit with the path that connects them", () => {
    expect(sorted(initialVisible(ids, edges, { focus: "f", hops: 1, pinned: ["s3"] }))).toEqual(["f", "j1", "s3", "t1", "t3"]);
  });
  it("shows everything without a focus (or with an unknown one)", () => {
    expect(initialVisible(ids, edges, {}).size).toBe(ids.length);
    expect(initialVisible(ids, edges, { focus: "nope" }).size).toBe(ids.length);
  });
});

describe("expand / collapse", () => {
  it("'+' adds exactly the node's parents", () => {
    const v = initialVisible(ids, edges, { focus: "f", hops: 2 });
    expect(hiddenParents(adj, v, "t1").sort()).toEqual(["s1", "t3"]);
    const v2 = expand(adj, v, "t1");
    expect(sorted(v2)).toEqual(["f", "j1", "s1", "t1", "t2", "t3"]);
    expect(hiddenParents(adj, v2, "t1")).toEqual([]);
    expect(v.has("s1")).toBe(false); // input not mutated
  });
  it("'−' hides what is upstream of the node but keeps other branches", () => {
    let v = new Set(ids);
    v = collapse(adj, v, "t1", "f");
    expect(sorted(v)).toEqual(["f", "j1", "other", "s2", "t1", "t2"]);
    // collapsing j1 hides both branches
    expect(sorted(collapse(adj, new Set(ids), "j1", "f"))).toEqual(["f", "j1", "other"]);
  });
  it("property: expand then collapse of a leaf-parent node returns the start set", () => {
    const v = initialVisible(ids, edges, { focus: "f", hops: 2 });
    for (const node of ["t2", "t1"]) {
      const back = collapse(adj, expand(adj, v, node), node, "f");
      expect(sorted(back)).toEqual(sorted(v));
    }
  });
});

describe("onset index", () => {
  it("finds the first point at or after the onset", () => {
    expect(onsetIndex([0, 10, 20, 30], 15)).toBe(2);
    expect(onsetIndex([0, 10, 20], 10)).toBe(1);
    expect(onsetIndex([0, 10], 99)).toBe(-1);
    expect(onsetIndex([0, 10], null)).toBe(-1);
  });
});
