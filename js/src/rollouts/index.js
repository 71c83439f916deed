// RolloutCorrelator: one row per model/experiment, one small canvas per health series.
// Root: div.hawknb-rollouts[data-panels][data-series]; rows: .hawknb-rollouts-panel
//   [data-model][data-experiment][data-suspect][data-selected]; cells: canvas.hawknb-spark
import {
  decodeTable,
  escapeHtml,
  formatNumber,
  formatTime,
  formatPercent,
  palette,
  renderError,
  scaffold,
} from "../_shared/index.js";
import { extent, scale, splitPanels, stepPoints } from "./logic.js";

const CSS = `
.hawknb-rollouts .hawknb-grid { display: grid; gap: 2px 8px; align-items: stretch; }
.hawknb-rollouts .hawknb-head { font-size: var(--jp-ui-font-size0, 11px);
  color: var(--jp-ui-font-color2, #666); text-align: center; padding-bottom: 2px; }
.hawknb-rollouts .hawknb-rollouts-panel { display: contents; cursor: pointer; }
.hawknb-rollouts .hawknb-label { padding: 4px 6px; border-left: 3px solid transparent;
  font-size: var(--jp-ui-font-size1, 13px); overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; background: var(--jp-layout-color1, #fafafa); }
.hawknb-rollouts .hawknb-label small { display: block; color: var(--jp-ui-font-color2, #666); }
.hawknb-rollouts .hawknb-rollouts-panel[data-suspect="true"] .hawknb-label {
  border-left-color: var(--jp-error-color1, #d32f2f); }
.hawknb-rollouts .hawknb-rollouts-panel[data-selected="true"] .hawknb-label,
.hawknb-rollouts .hawknb-rollouts-panel[data-selected="true"] .hawknb-cell {
  background: var(--jp-layout-color2, #e8eef8); }
.hawknb-rollouts .hawknb-cell { position: relative; background: var(--jp-layout-color0, #fff);
  border: 1px solid var(--jp-border-color2, #ddd); }
.hawknb-rollouts .hawknb-rollouts-panel[data-suspect="true"] .hawknb-cell {
  border-color: var(--jp-error-color1, #d32f2f); }
.hawknb-rollouts .hawknb-badge { font-size: 10px; color: #fff; background: var(--jp-error-color1, #d32f2f);
  border-radius: 3px; padding: 0 4px; margin-left: 4px; }
.hawknb-rollouts .hawknb-cell .hawknb-last { position: absolute; right: 4px; top: 1px;
  font-size: 10px; color: var(--jp-ui-font-color2, #666); }
.hawknb-rollouts .hawknb-axis { display: flex; justify-content: space-between;
  font-size: 10px; color: var(--jp-ui-font-color2, #666); }
`;

const CELL_H = 64;

function drawCell(canvas, panel, seriesName, data, x0, x1, pal, color, shared) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 200;
  const h = CELL_H;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, h);
  const sx = scale(x0, x1, 2, w - 2);
  // rollout starts: dashed verticals
  ctx.strokeStyle = pal.warn;
  ctx.setLineDash([3, 3]);
  ctx.lineWidth = 1;
  for (const s of panel.starts || []) {
    const px = sx(s.ts);
    ctx.beginPath();
    ctx.moveTo(px, 0);
    ctx.lineTo(px, h);
    ctx.stroke();
  }
  ctx.setLineDash([]);
  let last = null;
  if (seriesName === "traffic" && !(data && data.cols.traffic)) {
    const pts = stepPoints(panel.ramp || [], x1);
    if (!pts.length) return "no rollout";
    const sy = scale(0, 1, h - 4, 4);
    ctx.strokeStyle = pal.warn;
    ctx.fillStyle = "rgba(245,124,0,0.15)";
    ctx.beginPath();
    ctx.moveTo(sx(pts[0][0]), sy(0));
    for (const [t, s] of pts) ctx.lineTo(sx(t), sy(s));
    ctx.lineTo(sx(pts[pts.length - 1][0]), sy(0));
    ctx.closePath();
    ctx.fill();
    ctx.beginPath();
    pts.forEach(([t, s], i) => (i ? ctx.lineTo(sx(t), sy(s)) : ctx.moveTo(sx(t), sy(s))));
    ctx.stroke();
    return `${panel.snapshot} ${formatPercent(pts[pts.length - 1][1], 0)}`;
  }
  const ys = data && data.cols[seriesName];
  if (!ys) return "–";
  if (!extent([ys])) return "all NaN";
  const ext = shared; // one y scale per series across panels: differences stay comparable
  const sy = scale(ext[0], ext[1], h - 3, 3);
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.25;
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (!Number.isFinite(v)) {
      pen = false;
      continue;
    }
    const px = sx(data.x[i]);
    const py = sy(v);
    if (pen) ctx.lineTo(px, py);
    else ctx.moveTo(px, py);
    pen = true;
    last = v;
  }
  ctx.stroke();
  return `last ${formatNumber(last, 3)}`;
}

function render({ model, el }) {
  const { root, body } = scaffold(el, model, "hawknb-rollouts", CSS);
  const panels = model.get("panels") || [];
  const series = model.get("series") || [];
  root.dataset.panels = String(panels.length);
  root.dataset.series = series.join(",");
  if (!body) return () => {};
  let table;
  try {
    table = decodeTable(model.get("data"));
  } catch (e) {
    renderError(root, e.message);
    return () => {};
  }
  const byPanel = splitPanels(table, series);
  const xr = model.get("x_range") || [];
  const [x0, x1] = xr.length === 2 ? xr : [0, 1];
  const pal = palette(root);

  const grid = document.createElement("div");
  grid.className = "hawknb-grid";
  grid.style.gridTemplateColumns = `minmax(140px, 200px) repeat(${series.length}, minmax(120px, 1fr))`;
  grid.appendChild(document.createElement("div"));
  for (const s of series) {
    const hd = document.createElement("div");
    hd.className = "hawknb-head";
    hd.textContent = s;
    grid.appendChild(hd);
  }
  const rows = [];
  const cells = [];
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
    label.innerHTML = `${escapeHtml(p.model)}${p.suspect ? '<span class="hawknb-badge">suspect</span>' : ""}<small>${escapeHtml(p.experiment)}${p.snapshot ? ` · ${escapeHtml(p.snapshot)}` : ""}</small>`;
    label.title = `${p.model} / ${p.experiment}`;
    row.appendChild(label);
    series.forEach((s, si) => {
      const cell = document.createElement("div");
      cell.className = "hawknb-cell";
      const canvas = document.createElement("canvas");
      canvas.className = "hawknb-spark";
      canvas.dataset.series = s;
      canvas.style.cssText = `display:block;width:100%;height:${CELL_H}px`;
      const lastEl = document.createElement("span");
      lastEl.className = "hawknb-last";
      cell.append(canvas, lastEl);
      row.appendChild(cell);
      cells.push({ canvas, lastEl, panel: p, series: s, color: pal.series[si % pal.series.length] });
    });
    const choose = () => {
      model.set("selected", { model: p.model, experiment: p.experiment });
      model.save_changes();
    };
    row.addEventListener("click", choose);
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") choose();
    });
    rows.push(row);
    grid.appendChild(row);
  }
  body.appendChild(grid);
  const axis = document.createElement("div");
  axis.className = "hawknb-axis";
  axis.style.marginLeft = "208px";
  axis.innerHTML = `<span>${escapeHtml(formatTime(x0))}</span><span>rollout starts: dashed · ramp: traffic share of the snapshot under suspicion</span><span>${escapeHtml(formatTime(x1))}</span>`;
  body.appendChild(axis);

  const yExt = {};
  for (const s of series) {
    yExt[s] = extent([...byPanel.values()].map((d) => d.cols[s]).filter(Boolean));
  }
  const draw = () => {
    for (const c of cells) {
      c.lastEl.textContent = drawCell(c.canvas, c.panel, c.series, byPanel.get(c.panel.id), x0, x1, pal, c.color, yExt[c.series]) || "";
    }
  };
  const markSelected = () => {
    const sel = model.get("selected") || {};
    for (const r of rows) {
      r.dataset.selected = String(r.dataset.model === sel.model && r.dataset.experiment === sel.experiment);
    }
    root.dataset.selected = sel.model ? `${sel.model}/${sel.experiment}` : "";
  };
  markSelected();
  requestAnimationFrame(draw);
  model.on("change:selected", markSelected);
  let ro = null;
  if (typeof ResizeObserver !== "undefined") {
    ro = new ResizeObserver(() => requestAnimationFrame(draw));
    ro.observe(grid);
  }
  return () => {
    model.off("change:selected", markSelected);
    if (ro) ro.disconnect();
  };
}

export default { render };
