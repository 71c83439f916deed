import { describe, expect, it } from "vitest";
import { extent, scale, splitPanels, stepPoints } from "../src/rollouts/logic.js";

describe("rollouts logic", () => {
  it("splits the long table per panel", () => {
    const table = {
      numRows: 5,
      columns: {
        panel: Float64Array.from([0, 0, 1, 1, 1]),
        ts: Float64Array.from([1, 2, 1, 2, 3]),
        ne: Float64Array.from([5, 6, 7, 8, 9]),
      },
    };
    const m = splitPanels(table, ["ne", "traffic"]);
    expect([...m.keys()]).toEqual([0, 1]);
    expect(Array.from(m.get(1).cols.ne)).toEqual([7, 8, 9]);
    expect(m.get(0).cols.traffic).toBeUndefined();
  });
  it("computes a padded finite extent, centring flat lines", () => {
    expect(extent([[NaN, NaN]])).toBe(null);
    const [lo, hi] = extent([[0, 10], [NaN, 5]]);
    expect(lo).toBeLessThan(0);
    expect(hi).toBeGreaterThan(10);
    const [a, b] = extent([[2, 2]]);
    expect((a + b) / 2).toBe(2);
  });
  it("maps linearly and draws steps", () => {
    expect(scale(0, 10, 0, 100)(5)).toBe(50);
    expect(scale(3, 3, 0, 100)(3)).toBe(0);
    expect(stepPoints([[0, 0.1], [10, 1]], 20)).toEqual([[0, 0.1], [10, 0.1], [10, 1], [20, 1]]);
    expect(stepPoints([], 5)).toEqual([]);
  });
});

import { labelled, panelRanges, stackBands } from "../src/rollouts/logic.js";

describe("rollout bands", () => {
  it("stacks each time's shares to 1 in snapshot order", () => {
    // panel rows: t=1: s0 1.0; t=2: s0 0.75, s1 0.25; t=3: s1 1.0
    const ts = Float64Array.from([1, 2, 2, 3]);
    const snap = Float64Array.from([0, 0, 1, 1]);
    const share = Float64Array.from([1, 0.75, 0.25, 1]);
    const st = stackBands(ts, snap, share, 0, 4);
    expect(Array.from(st.ts)).toEqual([1, 2, 3]);
    expect(st.snaps).toEqual([0, 1]);
    expect(Array.from(st.upper[0])).toEqual([1, 0.75, 0]);
    expect(Array.from(st.lower[1])).toEqual([1, 0.75, 0]);
    expect(Array.from(st.upper[1])).toEqual([1, 1, 1]);
  });
  it("finds panel ranges and labels only rollouts near the anomaly unless asked", () => {
    const r = panelRanges(Float64Array.from([0, 0, 2, 2, 2]));
    expect([...r.entries()]).toEqual([[0, [0, 2]], [2, [2, 5]]]);
    const snaps = [{ id: 0, near: false, role: "" }, { id: 1, near: true, role: "" }, { id: 2, near: false, role: "predecessor" }];
    expect(labelled(snaps, false).map((s) => s.id)).toEqual([1, 2]);
    expect(labelled(snaps, true).length).toBe(3);
  });
});
