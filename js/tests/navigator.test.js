import { describe, expect, it } from "vitest";
import { childrenOf, pathTo, statusCounts, viewIndex } from "../src/navigator/logic.js";

const steps = [
  { id: "m", parent: null, status: "done" },
  { id: "x", parent: "m", status: "done" },
  { id: "y", parent: "m", status: "failed" },
  { id: "z", parent: "y", status: "skipped" },
  { id: "orphan", parent: "missing", status: "warning" },
];

describe("navigator logic", () => {
  it("groups children in input order; unknown parents become roots", () => {
    const k = childrenOf(steps);
    expect(k.get("").map((s) => s.id)).toEqual(["m", "orphan"]);
    expect(k.get("m").map((s) => s.id)).toEqual(["x", "y"]);
  });
  it("builds breadcrumbs and survives cycles", () => {
    expect(pathTo(steps, "z").map((s) => s.id)).toEqual(["m", "y", "z"]);
    expect(pathTo(steps, "nope")).toEqual([]);
    const cyc = [{ id: "a", parent: "b" }, { id: "b", parent: "a" }];
    expect(pathTo(cyc, "a").length).toBe(2);
  });
  it("maps a step to its view's index in the view stack, null without a view", () => {
    expect(viewIndex(["features", "lineage", "verdict"], "lineage")).toBe(1);
    expect(viewIndex(["features"], "topline")).toBe(null);
    expect(viewIndex(["features"], "")).toBe(null);
    expect(viewIndex(undefined, "x")).toBe(null);
  });
  it("counts statuses", () => {
    expect(statusCounts(steps)).toEqual({ done: 2, failed: 1, skipped: 1, warning: 1 });
  });
});
