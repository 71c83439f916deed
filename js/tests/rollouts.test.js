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
