import { describe, expect, it } from "vitest";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import {
  decodeTable,
  typedArray,
  toBytes,
  formatNumber,
  formatPercent,
  formatTime,
  formatDuration,
  isoFromMs,
  msFromIso,
  escapeHtml,
  allNaN,
} from "../src/_shared/index.js";

describe("decodeTable", () => {
  it("decodes numeric and string columns from an IPC stream given as a DataView", () => {
    const t = tableFromArrays({
      ts: Float64Array.from([1000, 2000, 3000]),
      value: Float64Array.from([1.5, NaN, -2]),
      name: ["a", "b", "c"],
    });
    const ipc = tableToIPC(t, "stream");
    const dv = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength);
    const out = decodeTable(dv);
    expect(out.numRows).toBe(3);
    expect(out.names).toEqual(["ts", "value", "name"]);
    expect(Array.from(out.columns.ts)).toEqual([1000, 2000, 3000]);
    expect(out.columns.value[0]).toBe(1.5);
    expect(Number.isNaN(out.columns.value[1])).toBe(true);
    expect(out.columns.name).toEqual(["a", "b", "c"]);
  });

  it("turns nulls in numeric columns into NaN", () => {
    const t = tableFromArrays({ v: [1, null, 3] });
    const out = decodeTable(tableToIPC(t, "stream"));
    expect(out.columns.v[0]).toBe(1);
    expect(Number.isNaN(out.columns.v[1])).toBe(true);
    expect(out.columns.v[2]).toBe(3);
  });

  it("returns an empty table for empty bytes", () => {
    expect(decodeTable(new DataView(new ArrayBuffer(0))).numRows).toBe(0);
    expect(decodeTable(null).numRows).toBe(0);
  });

  it("rejects non-binary input", () => {
    expect(() => toBytes("abc")).toThrow(TypeError);
  });
});

describe("typedArray", () => {
  it("rebuilds a float32 array from an unaligned view", () => {
    const src = Float32Array.from([1, 2, 3.5]);
    const padded = new Uint8Array(13);
    padded.set(new Uint8Array(src.buffer), 1);
    const dv = new DataView(padded.buffer, 1, 12);
    const out = typedArray({ dtype: "float32", shape: [3] }, dv);
    expect(Array.from(out)).toEqual([1, 2, 3.5]);
  });
  it("rejects an unknown dtype", () => {
    expect(() => typedArray({ dtype: "complex64", shape: [1] }, new Uint8Array(8))).toThrow();
  });
});

describe("format", () => {
  it("formats numbers, NaN and infinities", () => {
    expect(formatNumber(1234.5678, 4)).toBe("1,235");
    expect(formatNumber(0.5)).toBe("0.5");
    expect(formatNumber(NaN)).toBe("–");
    expect(formatNumber(null)).toBe("–");
    expect(formatNumber(Infinity)).toBe("∞");
    expect(formatNumber(2.5e-5, 2)).toBe("2.5e-5");
    expect(formatNumber(3e9, 2)).toBe("3.0e+9");
  });
  it("formats percents, durations and UTC times", () => {
    expect(formatPercent(0.1234)).toBe("12.3%");
    expect(formatDuration(90 * 1000)).toBe("2m");
    expect(formatDuration(3 * 3600e3)).toBe("3.0h");
    expect(formatDuration(2 * 86400e3)).toBe("2.0d");
    expect(formatTime(Date.UTC(2024, 0, 2, 3, 4))).toBe("2024-01-02 03:04 UTC");
  });
  it("round-trips ISO strings", () => {
    const ms = Date.UTC(2024, 5, 1, 12, 30, 15, 250);
    expect(msFromIso(isoFromMs(ms))).toBe(ms);
    expect(msFromIso("not a date")).toBe(null);
  });
  it("escapes HTML", () => {
    expect(escapeHtml('<a href="x">&</a>')).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
  });
  it("escapes hostile names into inert text, in text and in either attribute quoting", () => {
    const hostile = [
      "ctr<script>alert(1)</script>",
      "<img src=x onerror=alert(1)>",
      "x' onmouseover='alert(1)",
      'x" onmouseover="alert(1)',
    ];
    for (const name of hostile) {
      const out = escapeHtml(name);
      expect(out).not.toMatch(/[<>"']/);
      // decoding the entities gives the name back: escaped, not mangled
      const decoded = out
        .replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"')
        .replaceAll("&#39;", "'").replaceAll("&amp;", "&");
      expect(decoded).toBe(name);
    }
  });
  it("detects all-NaN series", () => {
    expect(allNaN([NaN, null, Infinity])).toBe(true);
    expect(allNaN([NaN, 1])).toBe(false);
    expect(allNaN([])).toBe(true);
  });
});
