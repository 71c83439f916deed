import { describe, expect, it } from "vitest";
import { lowerBound, minMaxDownsample, sliceRange, spliceDetail } from "../src/_shared/downsample.js";
import {
  bandBox,
  needsDetail,
  selectionFromRange,
  seriesNames,
  toUplotData,
  windowAt,
} from "../src/timeline/logic.js";

describe("visible-range downsampling", () => {
  const n = 100000;
  const xs = Float64Array.from({ length: n }, (_, i) => i * 60000);
  const ys = Float64Array.from({ length: n }, (_, i) => Math.sin(i / 100));
  ys[54321] = 42;
  ys[70000] = NaN;

  it("finds the visible slice by binary search", () => {
    expect(lowerBound(xs, 60000 * 10)).toBe(10);
    expect(lowerBound(xs, 60000 * 10 + 1)).toBe(11);
    expect(sliceRange(xs, 60000 * 10, 60000 * 20)).toEqual([10, 21]);
    expect(sliceRange(xs, 60000 * 20, 60000 * 10)).toEqual([10, 21]);
    expect(sliceRange(xs, -5, -1)).toEqual([0, 0]);
  });

  it("keeps the spike and a gap when downsampling the visible range", () => {
    const [i0, i1] = sliceRange(xs, 50000 * 60000, 80000 * 60000);
    const idx = minMaxDownsample(xs.subarray(i0, i1), ys.subarray(i0, i1), 500);
    expect(idx.length).toBeLessThanOrEqual(5 * 500);
    const kept = Array.from(idx, (k) => ys[i0 + k]);
    expect(Math.max(...kept.filter(Number.isFinite))).toBe(42);
    expect(kept.some(Number.isNaN)).toBe(true);
    for (let k = 1; k < idx.length; k++) expect(idx[k]).toBeGreaterThan(idx[k - 1]);
  });

  it("returns everything when few points and rejects zero buckets", () => {
    expect(Array.from(minMaxDownsample([1, 2, 3], [1, 2, 3], 10))).toEqual([0, 1, 2]);
    expect(minMaxDownsample([], [], 10).length).toBe(0);
    expect(() => minMaxDownsample([1, 2, 3], [1, 2, 3], 0)).toThrow(RangeError);
  });

  it("splices detail into the overview only within the zoomed range", () => {
    const overview = { x: Float64Array.from([0, 10, 20, 30, 40]), cols: { value: Float64Array.from([0, 1, 2, 3, 4]) } };
    const detail = { x: Float64Array.from([9, 12, 14, 16, 31]), cols: { value: Float64Array.from([9, 9, 9, 9, 9]) } };
    const m = spliceDetail(overview, detail, 11, 29);
    expect(Array.from(m.x)).toEqual([0, 10, 12, 14, 16, 30, 40]);
    expect(Array.from(m.cols.value)).toEqual([0, 1, 9, 9, 9, 3, 4]);
  });
});

describe("timeline logic", () => {
  const windows = [
    { onset: 100, end: 200, severity: 1 },
    { onset: 150, end: 300, severity: 5 },
  ];
  it("picks the most severe window under a time", () => {
    expect(windowAt(windows, 160).severity).toBe(5);
    expect(windowAt(windows, 120).severity).toBe(1);
    expect(windowAt(windows, 400)).toBe(null);
    expect(windowAt(undefined, 1)).toBe(null);
  });
  it("clips band boxes to the plot and drops ones outside", () => {
    const toPx = (v) => v / 10;
    expect(bandBox({ onset: 100, end: 200 }, toPx, 100)).toEqual({ left: 10, width: 10 });
    expect(bandBox({ onset: 900, end: 2000 }, toPx, 100)).toEqual({ left: 90, width: 10 });
    expect(bandBox({ onset: 2000, end: 3000 }, toPx, 100)).toBe(null);
    expect(bandBox({ onset: 100, end: 100 }, toPx, 100).width).toBe(2);
  });
  it("turns NaN into uPlot gaps and orders series", () => {
    const d = toUplotData([1, 2], { value: Float64Array.from([1, NaN]) }, ["value", "upper"]);
    expect(d[1]).toEqual([1, null]);
    expect(d[2]).toEqual([null, null]);
    expect(seriesNames({ upper: 1, value: 1, ts: 1, lower: 1 })).toEqual(["value", "lower", "upper"]);
  });
  it("builds ISO selections regardless of drag direction", () => {
    expect(selectionFromRange(Date.UTC(2024, 0, 2), Date.UTC(2024, 0, 1))).toEqual({
      start: "2024-01-01T00:00:00.000Z",
      end: "2024-01-02T00:00:00.000Z",
    });
  });
  it("asks for detail only for a new, partial range", () => {
    expect(needsDetail(0, 100, [0, 100], null)).toBe(false);
    expect(needsDetail(10, 20, [0, 100], null)).toBe(true);
    expect(needsDetail(10, 20, [0, 100], [10, 20])).toBe(false);
    expect(needsDetail(20, 10, [0, 100], null)).toBe(false);
  });
});
