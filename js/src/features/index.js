// FeatureRanking view: the ranked responsible features as a sortable, filterable table with
// inline sparklines and before/after histograms. The table arrives as Arrow IPC; only the rows
// in the scroll window are in the DOM, so thousands of features scroll without lag.
import { decodeTable, formatNumber, scaffold } from "../_shared/index.js";
import { themeColors, sparkline } from "../_graph/canvas.js";
import { columnsFromDecoded, compactColumns, defaultSort, displayOrder, filterIndices, formatShare, gridTemplate, sortIndices, virtualWindow } from "./table.js";

export const ROW_HEIGHT = 26;
const VIEWPORT = 420;

const CSS = `
.hawknb-features .hawknb-ft-bar { display: flex; gap: 8px; align-items: center; margin: 2px 0 6px; }
.hawknb-features .hawknb-filter { font: inherit; padding: 2px 6px; min-width: 220px;
  color: var(--jp-ui-font-color0, #111); background: var(--jp-layout-color1, #fff);
  border: 1px solid var(--jp-border-color1, #bbb); border-radius: 3px; }
.hawknb-features .hawknb-ft-columns { font: inherit; font-size: var(--jp-ui-font-size0, 11px); margin-left: auto; }
.hawknb-features .hawknb-count { color: var(--jp-ui-font-color2, #666); font-size: var(--jp-ui-font-size0, 11px); }
.hawknb-features .hawknb-ft-table { border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; }
.hawknb-features .hawknb-ft-head, .hawknb-features .hawknb-row { display: grid; align-items: center;
  column-gap: 8px; padding: 0 6px; white-space: nowrap; }
.hawknb-features .hawknb-ft-head { background: var(--jp-layout-color2, #eee); font-weight: 600;
  min-height: 30px; padding-top: 2px; padding-bottom: 2px; border-bottom: 1px solid var(--jp-border-color1, #bbb); }
.hawknb-features .hawknb-ft-head > div { cursor: pointer; user-select: none; overflow: hidden; text-overflow: ellipsis;
  white-space: normal; line-height: 1.15; }
.hawknb-features .hawknb-ft-head > div.num, .hawknb-features .hawknb-row > div.num { text-align: right; }
.hawknb-features .hawknb-ft-scroll { position: relative; overflow-y: auto; overflow-x: hidden; }
.hawknb-features .hawknb-ft-rows { position: absolute; left: 0; right: 0; top: 0; }
.hawknb-features .hawknb-row { height: ${ROW_HEIGHT}px; cursor: pointer;
  border-bottom: 1px solid var(--jp-border-color3, #eee); }
.hawknb-features .hawknb-row > div { overflow: hidden; text-overflow: ellipsis; }
.hawknb-features .hawknb-row:hover { background: var(--jp-layout-color2, #f2f2f2); }
.hawknb-features .hawknb-row.selected { background: var(--jp-brand-color3, #bbdefb);
  color: var(--jp-ui-font-color0, #111); }
.hawknb-features .hawknb-row .feat { font-family: var(--jp-code-font-family, monospace); }
.hawknb-features .hawknb-ft-detail { margin-top: 8px; display: flex; gap: 16px; align-items: flex-start;
  flex-wrap: wrap; color: var(--jp-ui-font-color1, #333); }
.hawknb-features .hawknb-ft-detail dl { display: grid; grid-template-columns: max-content max-content; gap: 1px 10px; margin: 0; }
.hawknb-features .hawknb-ft-detail dt { color: var(--jp-ui-font-color2, #666); }
.hawknb-features .hawknb-ft-detail dd { margin: 0; font-variant-numeric: tabular-nums; }
.hawknb-features .hawknb-none { padding: 10px; color: var(--jp-ui-font-color2, #666); }
`;

function drawHistPair(canvas, dist, theme, { labels = false } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.width / dpr;
  const H = canvas.height / dpr;
  const ctx = canvas.getContext("2d");
  if (!ctx || !dist) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  const b = dist.before || [];
  const a = dist.after || [];
  const n = Math.max(b.length, a.length);
  if (!n) return;
  const sb = b.reduce((s, v) => s + (v || 0), 0) || 1;
  const sa = a.reduce((s, v) => s + (v || 0), 0) || 1;
  let peak = 0;
  for (let i = 0; i < n; i++) peak = Math.max(peak, (b[i] || 0) / sb, (a[i] || 0) / sa);
  if (!(peak > 0)) return;
  const top = labels ? 12 : 1;
  const h = H - top - (labels ? 12 : 1);
  const bw = W / n;
  ctx.globalAlpha = 0.45;
  ctx.fillStyle = theme.fg2;
  for (let i = 0; i < n; i++) {
    const v = ((b[i] || 0) / sb / peak) * h;
    ctx.fillRect(i * bw, top + h - v, Math.max(1, bw - 0.5), v);
  }
  ctx.globalAlpha = 1;
  ctx.strokeStyle = theme.accent;
  ctx.lineWidth = 1.3;
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const v = ((a[i] || 0) / sa / peak) * h;
    const y = top + h - v;
    if (i === 0) ctx.moveTo(0, y);
    else ctx.lineTo(i * bw, y);
    ctx.lineTo((i + 1) * bw, y);
  }
  ctx.stroke();
  if (labels && dist.edges && dist.edges.length) {
    ctx.fillStyle = theme.fg2;
    ctx.font = `10px ${theme.font}`;
    ctx.textBaseline = "bottom";
    ctx.fillText(formatNumber(dist.edges[0]), 0, H);
    const last = formatNumber(dist.edges[dist.edges.length - 1]);
    ctx.fillText(last, W - ctx.measureText(last).width, H);
    ctx.textBaseline = "top";
    ctx.fillText("before", 0, 0);
    ctx.fillStyle = theme.accent;
    ctx.fillText("after", 44, 0);
  }
}

function makeCanvas(w, h) {
  const c = document.createElement("canvas");
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(w * dpr);
  c.height = Math.round(h * dpr);
  c.style.width = `${w}px`;
  c.style.height = `${h}px`;
  c.style.display = "block";
  return c;
}

function drawSpark(canvas, values, theme) {
  const dpr = window.devicePixelRatio || 1;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, canvas.width / dpr, canvas.height / dpr);
  sparkline(ctx, values, 1, 2, canvas.width / dpr - 2, canvas.height / dpr - 4, { color: theme.accent, lineWidth: 1.2 });
}

function render({ model, el }) {
  const { root, body } = scaffold(el, model, "hawknb-features", CSS);
  if (!body) return undefined;
  let decoded;
  try {
    decoded = decodeTable(model.get("_table"));
  } catch (err) {
    root.dataset.empty = "true";
    const d = document.createElement("div");
    d.className = "hawknb-error";
    d.textContent = `hawknb could not read the feature table: ${err.message}`;
    body.appendChild(d);
    return undefined;
  }
  const columns = columnsFromDecoded(decoded);
  const byName = new Map(columns.map((c) => [c.name, c]));
  const featCol = byName.get("feature");
  const sparks = model.get("_sparklines") || {};
  const dists = model.get("_distributions") || {};
  const hasSpark = Object.keys(sparks).length > 0;
  const hasDist = Object.keys(dists).length > 0;
  const labels = model.get("_labels") || {};
  const compact = compactColumns(columns.map((c) => c.name), model.get("compact_columns") || []);
  let showAll = compact.length === 0;
  const allShown = displayOrder(columns.map((c) => c.name)).map((n) => byName.get(n));
  let shown = showAll ? allShown : compact.map((n) => byName.get(n));
  const total = decoded.numRows;
  root.dataset.rows = String(total);

  const theme = () => themeColors(root);
  let sort = defaultSort(columns.map((c) => c.name));
  let query = "";
  let order = sortIndices(Int32Array.from({ length: total }, (_, i) => i), sort.key ? byName.get(sort.key) : null, sort.dir);
  let visible = order;

  // toolbar
  const bar = document.createElement("div");
  bar.className = "hawknb-ft-bar";
  const input = document.createElement("input");
  input.type = "search";
  input.className = "hawknb-filter";
  input.placeholder = "filter features (e.g. 'ctr', 'shift')";
  const count = document.createElement("span");
  count.className = "hawknb-count";
  const toggle = document.createElement("button");
  toggle.className = "hawknb-ft-columns";
  bar.append(input, count);
  if (compact.length) bar.appendChild(toggle);
  body.appendChild(bar);

  const table = document.createElement("div");
  table.className = "hawknb-ft-table";
  const head = document.createElement("div");
  head.className = "hawknb-ft-head";
  let tmpl = "";
  let headCells = [];
  // grid template: feature, then data columns, then the optional sparkline/histogram columns
  function buildHead() {
    tmpl = gridTemplate(shown, hasSpark, hasDist);
    head.style.gridTemplateColumns = tmpl;
    head.replaceChildren();
    headCells = shown.map((c) => {
      const d = document.createElement("div");
      d.dataset.col = c.name;
      d.className = c.kind === "num" ? "num" : "";
      const lab = labels[c.name];
      d.title = lab ? `${lab[1]} (${c.name}); click to sort` : `sort by ${c.name}`;
      d.addEventListener("click", () => {
        if (sort.key === c.name) sort = { key: c.name, dir: -sort.dir };
        else sort = { key: c.name, dir: c.kind === "num" && c.name !== "rank" ? -1 : 1 };
        scroll.scrollTop = 0; // a new order starts at its top
        recompute();
      });
      head.appendChild(d);
      return d;
    });
    for (const [show, text] of [[hasSpark, "trend"], [hasDist, "before/after"]]) {
      if (!show) continue;
      const d = document.createElement("div");
      d.textContent = text;
      head.appendChild(d);
    }
    toggle.textContent = showAll ? "fewer columns" : `all ${columns.length} columns`;
    root.dataset.columns = String(shown.length);
  }
  toggle.addEventListener("click", () => {
    showAll = !showAll;
    shown = showAll ? allShown : compact.map((n) => byName.get(n));
    buildHead();
    recompute();
  });
  const scroll = document.createElement("div");
  scroll.className = "hawknb-ft-scroll";
  const spacer = document.createElement("div");
  const rowsEl = document.createElement("div");
  rowsEl.className = "hawknb-ft-rows";
  scroll.append(spacer, rowsEl);
  table.append(head, scroll);
  body.appendChild(table);
  const none = document.createElement("div");
  none.className = "hawknb-none";
  none.style.display = "none";
  body.appendChild(none);
  const detail = document.createElement("div");
  detail.className = "hawknb-ft-detail";
  body.appendChild(detail);

  let frame = 0;
  function paintHeader() {
    headCells.forEach((d, j) => {
      const c = shown[j];
      const arrow = sort.key === c.name ? (sort.dir > 0 ? " ▲" : " ▼") : "";
      d.textContent = (labels[c.name] ? labels[c.name][0] : c.name) + arrow;
      d.setAttribute("aria-sort", sort.key === c.name ? (sort.dir > 0 ? "ascending" : "descending") : "none");
    });
    root.dataset.sortKey = sort.key || "";
    root.dataset.sortDir = sort.dir > 0 ? "asc" : "desc";
  }

  function recompute() {
    const all = Int32Array.from({ length: total }, (_, i) => i);
    order = sortIndices(all, sort.key ? byName.get(sort.key) : null, sort.dir);
    visible = filterIndices(order, columns, query);
    root.dataset.visibleRows = String(visible.length);
    count.textContent = visible.length === total ? `${total} features` : `${visible.length} of ${total} features`;
    const h = Math.min(VIEWPORT, Math.max(ROW_HEIGHT, visible.length * ROW_HEIGHT));
    scroll.style.height = `${h}px`;
    spacer.style.height = `${visible.length * ROW_HEIGHT}px`;
    none.style.display = visible.length ? "none" : "block";
    none.textContent = visible.length ? "" : `Nothing to show, because no feature matches "${query}".`;
    table.style.display = visible.length ? "block" : "none";
    paintHeader();
    paintRows();
  }

  function paintRows() {
    const win = virtualWindow({ scrollTop: scroll.scrollTop, viewport: scroll.clientHeight || VIEWPORT, rowHeight: ROW_HEIGHT, total: visible.length });
    const th = theme();
    const selected = model.get("selected_feature");
    const frag = document.createDocumentFragment();
    for (let r = win.start; r < win.end; r++) {
      const i = visible[r];
      const row = document.createElement("div");
      row.className = "hawknb-row";
      row.style.gridTemplateColumns = tmpl;
      const name = featCol ? featCol.values[i] : String(i);
      row.dataset.feature = name ?? "";
      row.dataset.index = String(i);
      if (name === selected) row.classList.add("selected");
      for (const c of shown) {
        const cell = document.createElement("div");
        if (c.kind === "num") {
          cell.className = "num";
          cell.textContent = c.name === "explained_share" ? formatShare(c.values[i]) : formatNumber(c.values[i]);
        } else {
          cell.className = c.name === "feature" ? "feat" : "";
          cell.textContent = c.values[i] ?? "–";
          cell.title = c.values[i] ?? "";
        }
        row.appendChild(cell);
      }
      if (hasSpark) {
        const cell = document.createElement("div");
        const s = sparks[name];
        if (s && s.length > 1) {
          const cv = makeCanvas(86, ROW_HEIGHT - 6);
          cv.className = "hawknb-spark";
          drawSpark(cv, s, th);
          cell.appendChild(cv);
        }
        row.appendChild(cell);
      }
      if (hasDist) {
        const cell = document.createElement("div");
        const d = dists[name];
        if (d) {
          const cv = makeCanvas(86, ROW_HEIGHT - 6);
          cv.className = "hawknb-dist";
          drawHistPair(cv, d, th);
          cell.appendChild(cv);
        }
        row.appendChild(cell);
      }
      frag.appendChild(row);
    }
    rowsEl.replaceChildren(frag);
    rowsEl.style.transform = `translateY(${win.offsetTop}px)`;
    root.dataset.renderedRows = String(win.end - win.start);
  }

  function paintDetail() {
    const name = model.get("selected_feature");
    detail.replaceChildren();
    root.dataset.selected = name || "";
    if (!name || !featCol) return;
    const i = featCol.values.indexOf(name);
    if (i < 0) return;
    const dl = document.createElement("dl");
    const dt0 = document.createElement("dt");
    dt0.textContent = "feature";
    const dd0 = document.createElement("dd");
    dd0.textContent = name;
    dl.append(dt0, dd0);
    for (const c of allShown) {
      if (c.name === "feature") continue;
      const dt = document.createElement("dt");
      dt.textContent = labels[c.name] ? labels[c.name][0] : c.name;
      const dd = document.createElement("dd");
      dd.textContent = c.kind === "num" ? formatNumber(c.values[i], 4) : c.values[i] ?? "–";
      dl.append(dt, dd);
    }
    detail.appendChild(dl);
    const th = theme();
    if (dists[name]) {
      const cv = makeCanvas(260, 110);
      cv.className = "hawknb-dist-large";
      drawHistPair(cv, dists[name], th, { labels: true });
      detail.appendChild(cv);
    }
    if (sparks[name] && sparks[name].length > 1) {
      const cv = makeCanvas(260, 110);
      cv.className = "hawknb-spark-large";
      drawSpark(cv, sparks[name], th);
      detail.appendChild(cv);
    }
  }

  scroll.addEventListener("scroll", () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      paintRows();
    });
  });
  input.addEventListener("input", () => {
    query = input.value;
    scroll.scrollTop = 0;
    recompute();
  });
  rowsEl.addEventListener("click", (ev) => {
    const row = ev.target.closest(".hawknb-row");
    if (!row) return;
    model.set("selected_feature", row.dataset.feature);
    model.save_changes();
  });
  const onSel = () => {
    for (const row of rowsEl.children) row.classList.toggle("selected", row.dataset.feature === model.get("selected_feature"));
    paintDetail();
  };
  model.on("change:selected_feature", onSel);
  // theme switches repaint the canvases (they cannot follow CSS variables by themselves)
  const mo = typeof MutationObserver === "function" ? new MutationObserver(() => {
    paintRows();
    paintDetail();
  }) : null;
  if (mo) mo.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  buildHead();
  recompute();
  paintDetail();
  requestAnimationFrame(() => paintRows());
  return () => {
    model.off("change:selected_feature", onSel);
    if (mo) mo.disconnect();
  };
}

function renderWithRefresh({ model, el }) {
  let cleanup = render({ model, el });
  const again = () => {
    if (typeof cleanup === "function") cleanup();
    cleanup = render({ model, el });
  };
  const keys = ["change:_table", "change:_sparklines", "change:_distributions", "change:compact_columns", "change:empty_reason", "change:title"];
  for (const k of keys) model.on(k, again);
  return () => {
    for (const k of keys) model.off(k, again);
    if (typeof cleanup === "function") cleanup();
  };
}

export default { render: renderWithRefresh };
