import { describe, expect, it } from "vitest";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { decodeTable } from "../src/_shared/arrow.js";
import {
  columnsFromDecoded,
  defaultSort,
  displayOrder,
  filterIndices,
  histogramPair,
  sortIndices,
  virtualWindow,
} from "../src/features/table.js";

const num = (name, values) => ({ name, kind: "num", values: Float64Array.from(values) });
const str = (name, values) => ({ name, kind: "str", values });
const all = (n) => Int32Array.from({ length: n }, (_, i) => i);

describe("sortIndices", () => {
  it("sorts numbers ascending and descending with NaN last both ways", () => {
    const c = num("score", [0.5, NaN, 0.9, 0.1]);
    expect(Array.from(sortIndices(all(4), c, 1))).toEqual([3, 0, 2, 1]);
    expect(Array.from(sortIndices(all(4), c, -1))).toEqual([2, 0, 3, 1]);
  });
  it("is stable on ties (keeps the incoming order)", () => {
    const c = num("rank", [2, 1, 2, 1]);
    expect(Array.from(sortIndices(Int32Array.from([3, 2, 1, 0]), c, 1))).toEqual([3, 1, 2, 0]);
  });
  it("sorts strings with nulls last", () => {
    const c = str("feature", ["b", null, "a", "c"]);
    expect(Array.from(sortIndices(all(4), c, 1))).toEqual([2, 0, 3, 1]);
    expect(Array.from(sortIndices(all(4), c, -1))).toEqual([3, 0, 2, 1]);
  });
  it("returns the order unchanged without a column", () => {
    expect(Array.from(sortIndices(Int32Array.from([2, 0, 1]), null, 1))).toEqual([2, 0, 1]);
  });
  it("property: output is a sorted permutation of the input", () => {
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(Math.random() * 60);
      const vals = Array.from({ length: n }, () => (Math.random() < 0.2 ? NaN : Math.round(Math.random() * 10)));
      const out = Array.from(sortIndices(all(n), num("x", vals), 1));
      expect([...out].sort((a, b) => a - b)).toEqual(Array.from(all(n)));
      const seq = out.map((i) => vals[i]);
      const finite = seq.filter((v) => !Number.isNaN(v));
      expect(seq.slice(0, finite.length)).toEqual(finite);
      for (let i = 1; i < finite.length; i++) expect(finite[i]).toBeGreaterThanOrEqual(finite[i - 1]);
    }
  });
});

describe("filterIndices", () => {
  const cols = [str("feature", ["ad_ctr_7d", "user_age", "ad_price", null]), str("evidence", ["drift", "shift", null, "x"]), num("score", [1, 2, 3, 4])];
  it("matches case-insensitively on every string column, all terms required", () => {
    expect(Array.from(filterIndices(all(4), cols, "AD"))).toEqual([0, 2]);
    expect(Array.from(filterIndices(all(4), cols, "ad drift"))).toEqual([0]);
    expect(Array.from(filterIndices(all(4), cols, "shift"))).toEqual([1]);
    expect(Array.from(filterIndices(all(4), cols, "nomatch"))).toEqual([]);
  });
  it("keeps the given order and returns everything for an empty query", () => {
    expect(Array.from(filterIndices(Int32Array.from([3, 1, 0, 2]), cols, "  "))).toEqual([3, 1, 0, 2]);
    expect(Array.from(filterIndices(Int32Array.from([2, 0]), cols, "ad"))).toEqual([2, 0]);
  });
});

describe("virtualWindow", () => {
  it("puts only the visible rows plus overscan in the window", () => {
    const w = virtualWindow({ scrollTop: 0, viewport: 260, rowHeight: 26, total: 5000, overscan: 5 });
    expect(w.start).toBe(0);
    expect(w.end).toBe(16); // 10 visible + 1 partial + 5 overscan
    expect(w.totalHeight).toBe(130000);
  });
  it("offsets the window when scrolled", () => {
    const w = virtualWindow({ scrollTop: 2600, viewport: 260, rowHeight: 26, total: 5000, overscan: 5 });
    expect(w.start).toBe(95);
    expect(w.end).toBe(116);
    expect(w.offsetTop).toBe(95 * 26);
  });
  it("clamps past the end and handles tiny or empty lists", () => {
    const w = virtualWindow({ scrollTop: 1e9, viewport: 260, rowHeight: 26, total: 100, overscan: 2 });
    expect(w.end).toBe(100);
    expect(w.start).toBeGreaterThan(80);
    expect(virtualWindow({ scrollTop: 0, viewport: 260, rowHeight: 26, total: 0 })).toEqual({ start: 0, end: 0, offsetTop: 0, totalHeight: 0 });
    expect(virtualWindow({ scrollTop: -50, viewport: 260, rowHeight: 26, total: 3 }).end).toBe(3);
  });
  it("rejects a non-positive row height", () => {
    expect(() => virtualWindow({ scrollTop: 0, viewport: 100, rowHeight: 0, total: 10 })).toThrow(/rowHeight/);
  });
  it("property: the window always covers the viewport and stays small", () => {
    for (let t = 0; t < 200; t++) {
      const total = Math.floor(Math.random() * 10000);
      const rowHeight = 10 + Math.floor(Math.random() * 30);
      const viewport = 100 + Math.floor(Math.random() * 600);
      const scrollTop = Math.random() * total * rowHeight;
      const w = virtualWindow({ scrollTop, viewport, rowHeight, total, overscan: 4 });
      const top = Math.min(scrollTop, Math.max(0, total * rowHeight - viewport));
      const firstVisible = Math.floor(top / rowHeight);
      const lastVisible = Math.min(total, Math.ceil((top + viewport) / rowHeight));
      expect(w.start).toBeLessThanOrEqual(firstVisible);
      expect(w.end).toBeGreaterThanOrEqual(Math.min(total, lastVisible));
      expect(w.end - w.start).toBeLessThanOrEqual(Math.ceil(viewport / rowHeight) + 1 + 8);
    }
  });
});

describe("columns from Arrow", () => {
  it("decodes numeric and string columns and orders feature/rank/score first", () => {
    const t = tableFromArrays({ score: Float64Array.from([0.3, NaN]), evidence: ["a", "b"], feature: ["f1", "f2"], rank: Int32Array.from([2, 1]) });
    const cols = columnsFromDecoded(decodeTable(tableToIPC(t, "stream")));
    const by = Object.fromEntries(cols.map((c) => [c.name, c]));
    expect(by.score.kind).toBe("num");
    expect(by.rank.kind).toBe("num");
    expect(by.feature.kind).toBe("str");
    expect(Array.from(by.rank.values)).toEqual([2, 1]);
    expect(displayOrder(cols.map((c) => c.name))).toEqual(["feature", "rank", "score", "evidence"]);
  });
  it("picks the default sort from the columns present", () => {
    expect(defaultSort(["feature", "score", "rank"])).toEqual({ key: "rank", dir: 1 });
    expect(defaultSort(["feature", "score"])).toEqual({ key: "score", dir: -1 });
    expect(defaultSort(["feature"])).toEqual({ key: null, dir: 1 });
  });
});

describe("histogramPair", () => {
  it("bins both samples on the joint range", () => {
    const h = histogramPair([0, 0, 1], [1, 1, 2, NaN], 2);
    expect(h.edges).toEqual([0, 1, 2]);
    expect(h.before).toEqual([2, 1]);
    expect(h.after).toEqual([0, 3]);
  });
  it("returns empty bins when nothing is finite", () => {
    expect(histogramPair([NaN], [], 4)).toEqual({ edges: [], before: [], after: [] });
  });
});
