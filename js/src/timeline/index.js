// AnomalyTimeline: uPlot canvas chart + DOM overlays for anomaly bands and rollout markers.
// Root: div.hawknb-timeline[data-points][data-total-points][data-bands][data-markers]
//       [data-detail-requests][data-view-lo][data-view-hi]
import uPlot from "uplot";
import uplotCss from "uplot/dist/uPlot.min.css";
import {
  decodeTable,
  ensureStyle,
  formatNumber,
  formatTime,
  formatDuration,
  msFromIso,
  palette,
  renderEmpty,
  renderError,
  request,
  scaffold,
  spliceDetail,
  allNaN,
} from "../_shared/index.js";
import {
  bandBox,
  needsDetail,
  selectionFromRange,
  seriesNames,
  toUplotData,
  windowAt,
} from "./logic.js";

const CSS = `
.hawknb-timeline .u-over { cursor: crosshair; }
.hawknb-timeline .hawknb-band { position: absolute; top: 0; bottom: 0; pointer-events: none;
  background: rgba(211, 47, 47, 0.14); border-left: 1px solid rgba(211, 47, 47, .6);
  border-right: 1px solid rgba(211, 47, 47, .6); }
.hawknb-timeline .hawknb-band[data-direction="down"] { background: rgba(25, 118, 210, 0.14);
  border-color: rgba(25, 118, 210, .6); }
.hawknb-timeline .hawknb-rollout-marker { position: absolute; top: 0; bottom: 0; width: 0;
  border-left: 1px dashed var(--jp-ui-font-color2, #777); pointer-events: none; }
.hawknb-timeline .hawknb-rollout-marker::after { content: "▼"; position: absolute; top: -2px;
  left: -5px; font-size: 9px; color: var(--jp-warn-color1, #f57c00); }
.hawknb-timeline .u-select { background: rgba(25, 118, 210, 0.18); }
.hawknb-timeline .u-legend { font-size: var(--jp-ui-font-size0, 11px);
  color: var(--jp-ui-font-color1, #333); }
.hawknb-timeline .hawknb-status { margin-left: auto; }
`;

function render({ model, el }) {
  ensureStyle("hawknb-uplot-css", uplotCss);
  const { root, body } = scaffold(el, model, "hawknb-timeline", CSS);
  const windows = model.get("windows") || [];
  const markers = model.get("markers") || [];
  root.dataset.bands = String(windows.length);
  root.dataset.markers = String(markers.length);
  // only the rollouts near an anomaly are drawn; the rest on demand (a toggle)
  let allMarkers = false;
  const nearCount = markers.filter((m) => m.near !== false).length;
  root.dataset.markersNear = String(nearCount);
  root.dataset.totalPoints = String(model.get("total_points"));
  root.dataset.detailRequests = "0";
  if (!body) {
    root.dataset.points = "0";
    return () => {};
  }
  let table;
  try {
    table = decodeTable(model.get("data"));
  } catch (e) {
    renderError(root, e.message);
    return () => {};
  }
  const names = seriesNames(table.columns);
  if (table.numRows === 0 || allNaN(table.columns.value)) {
    body.remove();
    root.dataset.empty = "true";
    renderEmpty(root, table.numRows === 0 ? "the series has no rows" : "every value is NaN");
    root.dataset.points = "0";
    return () => {};
  }
  const overview = { x: table.columns.ts, cols: Object.fromEntries(names.map((n) => [n, table.columns[n]])) };
  const full = model.get("x_range")?.length === 2 ? model.get("x_range") : [overview.x[0], overview.x[overview.x.length - 1]];

  // toolbar
  const bar = document.createElement("div");
  bar.className = "hawknb-toolbar";
  const zoomBtn = document.createElement("button");
  zoomBtn.textContent = "Zoom to selection";
  zoomBtn.className = "hawknb-zoom";
  const resetBtn = document.createElement("button");
  resetBtn.textContent = "Reset zoom";
  resetBtn.className = "hawknb-reset";
  const hint = document.createElement("span");
  hint.textContent = "drag to select a window · click a band to select it";
  const status = document.createElement("span");
  status.className = "hawknb-status";
  bar.append(zoomBtn, resetBtn);
  if (markers.length > nearCount) {
    const all = document.createElement("label");
    all.className = "hawknb-all-rollouts";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.addEventListener("change", () => {
      allMarkers = box.checked;
      if (u) drawOverlays(u);
    });
    all.append(box, ` all rollouts (${markers.length}; ${nearCount} near the anomaly)`);
    bar.appendChild(all);
  }
  bar.append(hint, status);
  body.appendChild(bar);
  const chartEl = document.createElement("div");
  body.appendChild(chartEl);

  const pal = palette(root);
  const seriesOpts = [{}];
  const colors = { value: pal.accent, baseline: pal.fg2, lower: "rgba(120,120,120,.6)", upper: "rgba(120,120,120,.6)" };
  for (const n of names) {
    seriesOpts.push({
      label: n,
      stroke: colors[n],
      width: n === "value" ? 1.25 : 1,
      dash: n === "baseline" ? [4, 4] : undefined,
      spanGaps: false,
      points: { show: false },
      value: (u, v) => formatNumber(v, 4),
    });
  }
  const constBase = model.get("baseline_value");
  let bandsOpt = [];
  if (names.includes("lower") && names.includes("upper")) {
    bandsOpt = [{ series: [names.indexOf("upper") + 1, names.indexOf("lower") + 1], fill: "rgba(120,120,120,.12)" }];
  }

  let current = overview;
  let lastDetail = null;
  let pending = 0;
  let requests = 0;
  let debounce = null;
  let disposed = false;

  const overlay = document.createElement("div");
  overlay.style.cssText = "position:absolute;inset:0;pointer-events:none;overflow:hidden";

  function drawOverlays(u) {
    overlay.replaceChildren();
    const w = u.over.clientWidth || u.bbox.width / devicePixelRatio;
    const toPx = (v) => u.valToPos(v, "x");
    for (const win of windows) {
      const box = bandBox(win, toPx, w);
      if (!box) continue;
      const d = document.createElement("div");
      d.className = "hawknb-band";
      d.dataset.direction = win.direction || "";
      d.dataset.severity = String(win.severity ?? "");
      d.dataset.onset = new Date(win.onset).toISOString();
      d.style.left = `${box.left}px`;
      d.style.width = `${box.width}px`;
      d.title = `${win.label || "anomaly"} ${win.direction || ""} · ${formatTime(win.onset)} – ${formatTime(win.end)} (${formatDuration(win.end - win.onset)})`;
      overlay.appendChild(d);
    }
    let drawn = 0;
    for (const m of markers) {
      if (!allMarkers && m.near === false) continue;
      const px = toPx(m.ts);
      if (!(px >= 0 && px <= w)) continue;
      const d = document.createElement("div");
      d.className = "hawknb-rollout-marker";
      d.dataset.model = m.model;
      d.dataset.experiment = m.experiment;
      d.style.left = `${px}px`;
      d.title = `${formatTime(m.ts)} rollout ${m.label}`;
      overlay.appendChild(d);
      drawn++;
    }
    root.dataset.markersDrawn = String(drawn);
    if (constBase != null && Number.isFinite(constBase)) {
      const y = u.valToPos(constBase, "y");
      if (y >= 0 && y <= u.over.clientHeight) {
        const d = document.createElement("div");
        d.className = "hawknb-baseline";
        d.style.cssText = `position:absolute;left:0;right:0;top:${y}px;border-top:1px dashed ${pal.fg2}`;
        overlay.appendChild(d);
      }
    }
  }

  function setStatus() {
    const lo = u.scales.x.min;
    const hi = u.scales.x.max;
    root.dataset.points = String(current.x.length);
    root.dataset.viewLo = String(lo);
    root.dataset.viewHi = String(hi);
    status.textContent = `${current.x.length.toLocaleString()} of ${Number(model.get("total_points")).toLocaleString()} points drawn` + (pending ? " · loading detail…" : "");
  }

  function askDetail(lo, hi) {
    if (!needsDetail(lo, hi, full, lastDetail)) {
      if (lo <= full[0] && hi >= full[1] && current !== overview) {
        current = overview;
        u.setData(toUplotData(current.x, current.cols, names), false);
      }
      return;
    }
    lastDetail = [lo, hi];
    pending++;
    requests++;
    root.dataset.detailRequests = String(requests);
    setStatus();
    request(model, "range", { lo, hi, width: Math.round(u.over.clientWidth || 800) })
      .then(({ buffers }) => {
        if (disposed) return;
        const t = decodeTable(buffers[0]);
        const detail = { x: t.columns.ts, cols: Object.fromEntries(names.map((n) => [n, t.columns[n]])) };
        current = spliceDetail(overview, detail, lo, hi);
        u.setData(toUplotData(current.x, current.cols, names), false);
        root.dataset.detailLoaded = String(Number(root.dataset.detailLoaded || 0) + 1);
      })
      .catch((e) => {
        status.textContent = `detail unavailable: ${e.message}`;
      })
      .finally(() => {
        pending--;
        if (!disposed) setStatus();
      });
  }

  const width = () => Math.max(320, Math.floor(el.getBoundingClientRect().width || root.clientWidth || 900) - 8);
  const opts = {
    width: width(),
    height: model.get("height") || 320,
    ms: 1,
    tzDate: (ts) => uPlot.tzDate(new Date(ts), "Etc/UTC"),
    series: seriesOpts,
    bands: bandsOpt,
    scales: { x: { time: true, min: full[0], max: full[1] } },
    axes: [
      { stroke: pal.fg2, grid: { stroke: pal.border, width: 1 }, ticks: { stroke: pal.border } },
      { stroke: pal.fg2, grid: { stroke: pal.border, width: 1 }, ticks: { stroke: pal.border }, values: (u, vals) => vals.map((v) => formatNumber(v, 3)), size: 60 },
    ],
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    legend: { show: true, live: true },
    hooks: {
      ready: [(u) => { u.over.appendChild(overlay); drawOverlays(u); setStatus(); }],
      setScale: [(u, key) => {
        if (key !== "x") return;
        drawOverlays(u);
        setStatus();
        clearTimeout(debounce);
        debounce = setTimeout(() => askDetail(u.scales.x.min, u.scales.x.max), 120);
      }],
      setSize: [(u) => drawOverlays(u)],
      setSelect: [(u) => {
        const sel = u.select;
        if (sel.width < 3) return; // a click, handled below (selects the band under it)
        const a = u.posToVal(sel.left, "x");
        const b = u.posToVal(sel.left + sel.width, "x");
        model.set("selected_window", selectionFromRange(a, b));
        model.save_changes();
      }],
    },
  };
  let u;
  try {
    u = new uPlot(opts, toUplotData(current.x, current.cols, names), chartEl);
  } catch (e) {
    renderError(root, e.message);
    return () => {};
  }

  function showSelection(plot) {
    const sel = model.get("selected_window") || {};
    const a = msFromIso(sel.start);
    const b = msFromIso(sel.end);
    if (a == null || b == null) {
      plot.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      root.dataset.selection = "";
      return;
    }
    const l = plot.valToPos(a, "x");
    const r = plot.valToPos(b, "x");
    plot.setSelect({ left: Math.min(l, r), top: 0, width: Math.abs(r - l), height: plot.over.clientHeight }, false);
    root.dataset.selection = `${sel.start}/${sel.end}`;
  }

  // a click (no drag) on an anomaly band selects exactly that window
  let downAt = null;
  u.over.addEventListener("mousedown", (e) => { downAt = [e.clientX, e.clientY]; });
  u.over.addEventListener("click", (e) => {
    if (!downAt || Math.abs(e.clientX - downAt[0]) > 3) return;
    const rect = u.over.getBoundingClientRect();
    const win = windowAt(windows, u.posToVal(e.clientX - rect.left, "x"));
    if (!win) return;
    model.set("selected_window", selectionFromRange(win.onset, win.end));
    model.save_changes();
    showSelection(u);
  });

  const onSelection = () => showSelection(u);
  model.on("change:selected_window", onSelection);
  showSelection(u);

  zoomBtn.addEventListener("click", () => {
    const sel = model.get("selected_window") || {};
    const a = msFromIso(sel.start);
    const b = msFromIso(sel.end);
    if (a == null || b == null || b <= a) return;
    u.setScale("x", { min: a, max: b });
    showSelection(u);
  });
  resetBtn.addEventListener("click", () => {
    u.setScale("x", { min: full[0], max: full[1] });
    showSelection(u);
  });
  chartEl.addEventListener("dblclick", () => resetBtn.click());

  let ro = null;
  if (typeof ResizeObserver !== "undefined") {
    ro = new ResizeObserver(() => {
      const w = width();
      if (Math.abs(w - u.width) > 4) u.setSize({ width: w, height: u.height });
    });
    ro.observe(el);
  }
  return () => {
    disposed = true;
    clearTimeout(debounce);
    model.off("change:selected_window", onSelection);
    if (ro) ro.disconnect();
    u.destroy();
  };
}

export default { render };
