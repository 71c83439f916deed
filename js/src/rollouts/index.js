// RolloutCorrelator: one time axis for the top-line metric, each model/arm's prediction health
// and every snapshot's traffic share (a band per snapshot whose height is its share), so the
// rollout that lines up with the onset is seen at a glance; below, the snapshot under
// suspicion and its predecessor in the same hours.
// Root: div.hawknb-rollouts[data-panels][data-series][data-snapshots][data-labelled][data-compare]
// rows: .hawknb-rollouts-panel[data-model][data-experiment][data-suspect][data-selected]
import { decodeTable, escapeHtml, formatNumber, formatTime, palette, renderError, scaffold } from "../_shared/index.js";
import { extent, labelled, panelRanges, scale, splitPanels, stackBands } from "./logic.js";

const CSS = `
.hawknb-rollouts .hawknb-rc-bar { display: flex; gap: 12px; align-items: center; margin: 2px 0 6px;
  font-size: var(--jp-ui-font-size1, 13px); }
.hawknb-rollouts .hawknb-grid { display: grid; grid-template-columns: 170px 1fr; gap: 3px 8px; }
.hawknb-rollouts .hawknb-rollouts-panel { display: contents; cursor: pointer; }
.hawknb-rollouts .hawknb-label { padding: 4px 6px; border-left: 3px solid transparent;
  font-size: var(--jp-ui-font-size1, 13px); overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; background: var(--jp-layout-color1, #fafafa); }
.hawknb-rollouts .hawknb-label small { display: block; color: var(--jp-ui-font-color2, #666); }
.hawknb-rollouts .hawknb-rollouts-panel[data-suspect="true"] .hawknb-label { border-left-color: var(--jp-error-color1, #d32f2f); }
.hawknb-rollouts .hawknb-rollouts-panel[data-selected="true"] .hawknb-label { background: var(--jp-layout-color2, #e8eef8); }
.hawknb-rollouts .hawknb-badge { font-size: 10px; color: #fff; background: var(--jp-error-color1, #d32f2f);
  border-radius: 3px; padding: 0 4px; margin-left: 4px; }
.hawknb-rollouts canvas { display: block; width: 100%; border: 1px solid var(--jp-border-color2, #ddd);
  background: var(--jp-layout-color0, #fff); }
.hawknb-rollouts .hawknb-axis { display: flex; justify-content: space-between; font-size: 11px;
  color: var(--jp-ui-font-color2, #666); }
.hawknb-rollouts .hawknb-rc-compare { margin-top: 10px; }
.hawknb-rollouts .hawknb-rc-compare h4 { margin: 4px 0; font-size: var(--jp-ui-font-size1, 13px); }
.hawknb-rollouts .hawknb-rc-legend span { margin-right: 12px; }
.hawknb-rollouts .hawknb-rc-legend i { display: inline-block; width: 14px; height: 8px; margin-right: 4px; }
`;

const ROW_H = 78;
const TOP_H = 96;

function setup(canvas, h) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function line(ctx, xs, ys, sx, sy, color, width = 1.4) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < ys.length; i++) {
    if (!Number.isFinite(ys[i])) {
      pen = false;
      continue;
    }
    if (pen) ctx.lineTo(sx(xs[i]), sy(ys[i]));
    else ctx.moveTo(sx(xs[i]), sy(ys[i]));
    pen = true;
  }
  ctx.stroke();
}

function shadeWindow(ctx, win, sx, h, pal) {
  if (win.length !== 2) return;
  ctx.fillStyle = pal.band;
  ctx.globalAlpha = 0.5;
  ctx.fillRect(sx(win[0]), 0, Math.max(2, sx(win[1]) - sx(win[0])), h);
  ctx.globalAlpha = 1;
  ctx.strokeStyle = pal.error;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(sx(win[0]), 0);
  ctx.lineTo(sx(win[0]), h);
  ctx.stroke();
}

function snapColor(s, pal) {
  if (s.role === "suspect" || s.role === "examined") return pal.error;
  if (s.role === "predecessor") return pal.accent;
  if (s.role === "named") return pal.warn;
  return s.id % 2 ? "#9e9e9e" : "#cfcfcf";
}

function drawBands(ctx, stack, snapById, sx, y0, y1, pal) {
  const sy = scale(0, 1, y1, y0);
  for (const id of stack.snaps) {
    const lo = stack.lower[id];
    const hi = stack.upper[id];
    const s = snapById.get(id) || { id, role: "" };
    ctx.fillStyle = snapColor(s, pal);
    ctx.globalAlpha = s.role ? 0.75 : 0.55;
    ctx.beginPath();
    const n = stack.ts.length;
    const step = n > 1 ? stack.ts[1] - stack.ts[0] : 3600e3;
    for (let k = 0; k < n; k++) {
      const xa = sx(stack.ts[k]);
      const xb = sx(k + 1 < n ? stack.ts[k + 1] : stack.ts[k] + step);
      if (k === 0) ctx.moveTo(xa, sy(hi[k]));
      ctx.lineTo(xa, sy(hi[k]));
      ctx.lineTo(xb, sy(hi[k]));
    }
    for (let k = n - 1; k >= 0; k--) {
      const xa = sx(stack.ts[k]);
      const xb = sx(k + 1 < n ? stack.ts[k + 1] : stack.ts[k] + step);
      ctx.lineTo(xb, sy(lo[k]));
      ctx.lineTo(xa, sy(lo[k]));
    }
    ctx.closePath();
    ctx.fill();
  }
  ctx.globalAlpha = 1;
}

function drawLabels(ctx, snaps, sx, y, pal, font, w) {
  ctx.font = `11px ${font}`;
  ctx.textBaseline = "top";
  let lastEnd = -Infinity;
  let row = 0;
  for (const s of snaps) {
    const x = sx(s.start);
    if (x < 0 || x > w) continue;
    ctx.strokeStyle = snapColor(s, pal);
    ctx.setLineDash([3, 2]);
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, y + 12);
    ctx.stroke();
    ctx.setLineDash([]);
    const text = s.role && s.role !== "named" ? `${s.name} (${s.role})` : s.name;
    const tw = ctx.measureText(text).width;
    row = x < lastEnd ? (row + 1) % 3 : 0;
    const tx = Math.min(x + 3, w - tw - 2);
    ctx.fillStyle = pal.fg;
    ctx.fillText(text, tx, 2 + row * 12);
    lastEnd = tx + tw + 6;
  }
}

function render({ model, el }) {
  const { root, body } = scaffold(el, model, "hawknb-rollouts", CSS);
  const panels = model.get("panels") || [];
  const series = (model.get("series") || []).filter((s) => s !== "traffic");
  const snapshots = model.get("snapshots") || [];
  root.dataset.panels = String(panels.length);
  root.dataset.series = (model.get("series") || []).join(",");
  root.dataset.snapshots = String(snapshots.length);
  if (!body) return () => {};
  let health;
  let bands;
  let top;
  let cmp;
  try {
    health = decodeTable(model.get("data"));
    bands = decodeTable(model.get("bands"));
    top = decodeTable(model.get("topline"));
    cmp = decodeTable(model.get("compare"));
  } catch (e) {
    renderError(root, e.message);
    return () => {};
  }
  const byPanel = splitPanels(health, series);
  const bandRanges = bands.numRows ? panelRanges(bands.columns.panel) : new Map();
  const stacks = new Map();
  for (const [pid, [a, b]] of bandRanges) stacks.set(pid, stackBands(bands.columns.ts, bands.columns.snap, bands.columns.share, a, b));
  const snapById = new Map(snapshots.map((s) => [s.id, s]));
  const xr = model.get("x_range") || [];
  const [x0, x1] = xr.length === 2 ? xr : [0, 1];
  const win = model.get("window") || [];
  const pal = palette(root);
  let metric = series[0] || "";
  let allLabels = false;

  const bar = document.createElement("div");
  bar.className = "hawknb-rc-bar";
  const pick = document.createElement("select");
  pick.className = "hawknb-rc-series";
  for (const s of series) pick.add(new Option(`health: ${s}`, s));
  const allBox = document.createElement("label");
  allBox.innerHTML = `<input type="checkbox" class="hawknb-rc-all"> label every rollout (${snapshots.length})`;
  const legend = document.createElement("span");
  legend.className = "hawknb-rc-legend";
  legend.innerHTML =
    `<span><i style="background:${pal.error}"></i>under suspicion</span>` +
    `<span><i style="background:${pal.accent}"></i>predecessor</span>` +
    `<span><i style="background:${pal.warn}"></i>named by the snapshot step</span>` +
    `<span><i style="background:#bdbdbd"></i>other snapshots (band height = traffic share)</span>`;
  if (series.length) bar.appendChild(pick);
  if (snapshots.length) bar.appendChild(allBox);
  bar.appendChild(legend);
  body.appendChild(bar);

  const grid = document.createElement("div");
  grid.className = "hawknb-grid";
  let topCanvas = null;
  if (top.numRows) {
    const lab = document.createElement("div");
    lab.className = "hawknb-label";
    lab.innerHTML = `${escapeHtml(model.get("topline_name") || "top line")}<small>top-line metric</small>`;
    topCanvas = document.createElement("canvas");
    topCanvas.className = "hawknb-topline";
    topCanvas.style.height = `${TOP_H}px`;
    grid.append(lab, topCanvas);
  }
  const rows = [];
  for (const p of panels) {
    const row = document.createElement("div");
    row.className = "hawknb-rollouts-panel";
    row.dataset.model = p.model;
    row.dataset.experiment = p.experiment;
    row.dataset.suspect = String(!!p.suspect);
    row.setAttribute("role", "button");
    row.tabIndex = 0;
    const label = document.createElement("div");
    label.className = "hawknb-label";
    label.innerHTML = `${escapeHtml(p.model)}${p.suspect ? '<span class="hawknb-badge">suspect</span>' : ""}<small>${escapeHtml(p.experiment)}</small>`;
    label.title = `${p.model} / ${p.experiment}: click to rank this model's features`;
    const canvas = document.createElement("canvas");
    canvas.className = "hawknb-spark";
    canvas.style.height = `${ROW_H}px`;
    row.append(label, canvas);
    const choose = () => {
      model.set("selected_panel", { model: p.model, experiment: p.experiment });
      model.save_changes();
    };
    row.addEventListener("click", choose);
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") choose();
    });
    rows.push({ row, canvas, panel: p });
    grid.appendChild(row);
  }
  body.appendChild(grid);
  const axis = document.createElement("div");
  axis.className = "hawknb-axis";
  axis.style.marginLeft = "178px";
  axis.innerHTML = `<span>${escapeHtml(formatTime(x0))}</span><span>shaded: the anomaly · line: prediction health · bands: snapshot traffic share</span><span>${escapeHtml(formatTime(x1))}</span>`;
  body.appendChild(axis);

  let cmpCanvas = null;
  const pair = model.get("compare_pair") || [];
  if (cmp.numRows && pair.length === 2) {
    const box = document.createElement("div");
    box.className = "hawknb-rc-compare";
    const h = document.createElement("h4");
    h.textContent = model.get("compare_title") || `${pair[0]} vs ${pair[1]}, same hours`;
    cmpCanvas = document.createElement("canvas");
    cmpCanvas.className = "hawknb-rc-compare-canvas";
    cmpCanvas.style.height = "130px";
    box.append(h, cmpCanvas);
    body.appendChild(box);
    root.dataset.compare = pair.join(",");
  }

  const draw = () => {
    const font = getComputedStyle(root).fontFamily || "sans-serif";
    const shown = labelled(snapshots, allLabels);
    root.dataset.labelled = String(shown.length);
    if (topCanvas) {
      const { ctx, w, h } = setup(topCanvas, TOP_H);
      const sx = scale(x0, x1, 2, w - 2);
      shadeWindow(ctx, win, sx, h, pal);
      const ext = extent([top.columns.value]);
      if (ext) line(ctx, top.columns.ts, top.columns.value, sx, scale(ext[0], ext[1], h - 4, 40), pal.fg, 1.3);
      drawLabels(ctx, shown, sx, 14, pal, font, w);
    }
    const ext = extent([...byPanel.values()].map((d) => d.cols[metric]).filter(Boolean));
    for (const { canvas, panel } of rows) {
      const { ctx, w, h } = setup(canvas, ROW_H);
      const sx = scale(x0, x1, 2, w - 2);
      shadeWindow(ctx, win, sx, h, pal);
      const stack = stacks.get(panel.id);
      if (stack) drawBands(ctx, stack, snapById, sx, h * 0.58, h - 2, pal);
      const d = byPanel.get(panel.id);
      if (d && d.cols[metric] && ext) line(ctx, d.x, d.cols[metric], sx, scale(ext[0], ext[1], h * 0.55, 4), pal.fg);
      ctx.fillStyle = pal.fg2;
      ctx.font = `10px ${font}`;
      ctx.textBaseline = "top";
      ctx.fillText(metric, 4, 2);
    }
    if (cmpCanvas) {
      const { ctx, w, h } = setup(cmpCanvas, 130);
      const sx = scale(x0, x1, 2, w - 2);
      shadeWindow(ctx, win, sx, h, pal);
      const c = cmp.columns;
      const ys = c[metric];
      if (ys) {
        const ex = extent([ys]);
        const sy = scale(ex[0], ex[1], h - 4, 16);
        for (const [which, color] of [[1, pal.accent], [0, pal.error]]) {
          const idx = [];
          for (let i = 0; i < cmp.numRows; i++) if (c.which[i] === which) idx.push(i);
          line(ctx, idx.map((i) => c.ts[i]), idx.map((i) => ys[i]), sx, sy, color, 1.6);
        }
        ctx.fillStyle = pal.fg2;
        ctx.font = `10px ${font}`;
        ctx.textBaseline = "top";
        ctx.fillText(`${metric}: ${formatNumber(ex[0], 3)} .. ${formatNumber(ex[1], 3)}`, 4, 2);
      }
    }
  };
  pick.addEventListener("change", () => {
    metric = pick.value;
    draw();
  });
  const box = allBox.querySelector("input");
  if (box) {
    box.addEventListener("change", () => {
      allLabels = box.checked;
      draw();
    });
  }
  const markSelected = () => {
    const sel = model.get("selected_panel") || {};
    for (const { row } of rows) row.dataset.selected = String(row.dataset.model === sel.model && row.dataset.experiment === sel.experiment);
    root.dataset.selected = sel.model ? `${sel.model}/${sel.experiment}` : "";
  };
  markSelected();
  requestAnimationFrame(draw);
  model.on("change:selected_panel", markSelected);
  let ro = null;
  if (typeof ResizeObserver !== "undefined") {
    ro = new ResizeObserver(() => requestAnimationFrame(draw));
    ro.observe(grid);
  }
  return () => {
    model.off("change:selected_panel", markSelected);
    if (ro) ro.disconnect();
  };
}

export default { render };
