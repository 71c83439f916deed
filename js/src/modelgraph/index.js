// ModelGraphTensorViewer: the exported model graph laid out by ELK, each op coloured by a
// tensor statistic on a log scale (activations blow up by decades, not percents), NaN/extreme
// nodes flagged, click for the node's histogram, and walks to the inputs / to the output so
// the engineer can follow a NaN back to where it first appears.
import { ensureStyle, scaffold } from "../_shared/index.js";
import { GraphCanvas, clipText, roundRect, themeColors } from "../_graph/canvas.js";
import { fmt, logScale, paletteColor, textOn, toNum } from "../_graph/colors.js";
import { layoutGraph } from "../_graph/layout.js";
import { adjacency, reach } from "../_graph/walk.js";

export const NODE_W = 150;
export const NODE_H = 34;

const CSS = `
.hawknb-modelgraph .hawknb-mg-main { display: flex; gap: 8px; align-items: stretch; }
.hawknb-modelgraph .hawknb-mg-canvas { flex: 1 1 auto; min-width: 200px;
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; position: relative; }
.hawknb-modelgraph .hawknb-mg-side { flex: 0 0 250px; font-size: var(--jp-ui-font-size1, 12px);
  color: var(--jp-ui-font-color1, #333); overflow-y: auto; max-height: 520px; }
.hawknb-modelgraph .hawknb-mg-side h4 { margin: 2px 0 4px; font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color0, #111); word-break: break-all; }
.hawknb-modelgraph .hawknb-mg-side dl { display: grid; grid-template-columns: auto 1fr; gap: 1px 8px; margin: 4px 0; }
.hawknb-modelgraph .hawknb-mg-side dt { color: var(--jp-ui-font-color2, #666); }
.hawknb-modelgraph .hawknb-mg-side dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-all; }
.hawknb-modelgraph .hawknb-flag { color: var(--jp-error-color1, #d32f2f); }
.hawknb-modelgraph .hawknb-mg-flaglist button { display: block; width: 100%; text-align: left; margin: 1px 0;
  font: inherit; color: var(--jp-ui-font-color1, #333); background: var(--jp-layout-color2, #eee);
  border: 1px solid var(--jp-border-color2, #ddd); border-radius: 3px; cursor: pointer; padding: 1px 6px; }
.hawknb-modelgraph select { font: inherit; color: var(--jp-ui-font-color1, #333);
  background: var(--jp-layout-color1, #fff); border: 1px solid var(--jp-border-color1, #bbb); }
.hawknb-modelgraph .hawknb-colorbar { display: inline-block; width: 120px; height: 10px; border-radius: 2px;
  vertical-align: middle; margin: 0 4px; }
`;

const STAT_ORDER = ["max_abs", "mean", "std", "min", "max", "nan", "inf", "change_vs_previous"];

function histCanvas(hist, theme) {
  const W = 240;
  const H = 90;
  const dpr = window.devicePixelRatio || 1;
  const c = document.createElement("canvas");
  c.className = "hawknb-mg-hist";
  c.width = W * dpr;
  c.height = H * dpr;
  c.style.width = `${W}px`;
  c.style.height = `${H}px`;
  const ctx = c.getContext("2d");
  const counts = (hist && hist.counts) || [];
  const edges = (hist && hist.edges) || [];
  if (!ctx || !counts.length) return c;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const peak = Math.max(...counts.map((v) => toNum(v) || 0), 1e-12);
  const bw = W / counts.length;
  ctx.fillStyle = theme.accent;
  const h = H - 14;
  counts.forEach((v, i) => {
    const bh = ((toNum(v) || 0) / peak) * h;
    ctx.fillRect(i * bw, h - bh, Math.max(1, bw - 1), bh);
  });
  ctx.fillStyle = theme.fg2;
  ctx.font = `10px ${theme.font}`;
  ctx.textBaseline = "bottom";
  if (edges.length) {
    ctx.fillText(fmt(toNum(edges[0])), 0, H);
    const last = fmt(toNum(edges[edges.length - 1]));
    ctx.fillText(last, W - ctx.measureText(last).width, H);
  }
  return c;
}

function render({ model, el }) {
  ensureStyle("hawknb-modelgraph-css", CSS);
  const { root, body } = scaffold(el, model, "hawknb-modelgraph");
  if (!body) return undefined;
  const nodes = model.get("_nodes") || [];
  const edges = model.get("_edges") || [];
  const stats = model.get("_stats") || {};
  const flags = model.get("_flags") || {};
  const statKeys = model.get("_stat_keys") || [];
  root.dataset.nodes = String(nodes.length);
  root.dataset.edges = String(edges.length);
  root.dataset.flagged = String(Object.keys(flags).length);
  root.dataset.layout = "pending";

  const adj = adjacency(edges);
  let highlight = null; // Map id -> hops, or null
  let walkDir = "";

  // toolbar
  const bar = document.createElement("div");
  bar.className = "hawknb-toolbar";
  const sel = document.createElement("select");
  sel.className = "hawknb-colorby";
  const keys = [...STAT_ORDER.filter((k) => statKeys.includes(k)), ...statKeys.filter((k) => !STAT_ORDER.includes(k))];
  for (const k of keys) {
    const o = document.createElement("option");
    o.value = k;
    o.textContent = k;
    sel.appendChild(o);
  }
  sel.value = model.get("color_by");
  const colorLabel = document.createElement("span");
  colorLabel.textContent = "colour by";
  const legend = document.createElement("span");
  legend.className = "hawknb-legend-scale";
  const upBtn = document.createElement("button");
  upBtn.className = "hawknb-walk-up";
  upBtn.textContent = "◀ walk upstream";
  upBtn.title = "highlight every path from the graph inputs to the selected node";
  const downBtn = document.createElement("button");
  downBtn.className = "hawknb-walk-down";
  downBtn.textContent = "walk downstream ▶";
  downBtn.title = "highlight every path from the selected node to the output";
  const clearBtn = document.createElement("button");
  clearBtn.className = "hawknb-walk-clear";
  clearBtn.textContent = "clear";
  const fitBtn = document.createElement("button");
  fitBtn.textContent = "fit";
  const info = document.createElement("span");
  info.className = "hawknb-mg-info";
  if (keys.length) bar.append(colorLabel, sel, legend);
  bar.append(upBtn, downBtn, clearBtn, fitBtn, info);
  body.appendChild(bar);

  const main = document.createElement("div");
  main.className = "hawknb-mg-main";
  const holder = document.createElement("div");
  holder.className = "hawknb-mg-canvas";
  const side = document.createElement("div");
  side.className = "hawknb-mg-side";
  main.append(holder, side);
  body.appendChild(main);

  let scale = null;
  let layout = null;
  const statOf = (id, key) => {
    const s = stats[id];
    return s ? toNum(s[key]) : null;
  };

  function recolor() {
    const key = model.get("color_by");
    scale = logScale(nodes.map((n) => statOf(n.id, key)));
    root.dataset.colorBy = key;
    legend.replaceChildren();
    if (scale.valid) {
      const lo = document.createElement("span");
      lo.textContent = `1e${scale.lo.toFixed(1)}`;
      const barEl = document.createElement("span");
      barEl.className = "hawknb-colorbar";
      barEl.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(paletteColor).join(",")})`;
      const hi = document.createElement("span");
      hi.textContent = `1e${scale.hi.toFixed(1)} (log |${key}|)`;
      legend.append(lo, barEl, hi);
    } else {
      legend.textContent = `no ${key} values`;
    }
    canvas.requestDraw();
  }

  const drawNode = (ctx, i, k, th) => {
    const id = layout.ids[i];
    const n = byId.get(id);
    const x = layout.x[i];
    const y = layout.y[i];
    const w = layout.w[i];
    const h = layout.h[i];
    const v = statOf(id, model.get("color_by"));
    const hasStat = v != null;
    const fill = hasStat ? scale.color(v) : th.bg2;
    const dim = highlight && !highlight.has(id);
    ctx.globalAlpha = dim ? 0.18 : 1;
    roundRect(ctx, x, y, w, h, 4);
    ctx.fillStyle = fill;
    ctx.fill();
    const selected = model.get("selected_node") === id;
    const flagged = flags[id] != null;
    ctx.lineWidth = (selected ? 3 : flagged ? 2.5 : 1) / Math.max(k, 0.3);
    ctx.strokeStyle = selected ? th.accent : flagged ? th.error : th.border;
    ctx.stroke();
    if (k > 0.28) {
      const tc = hasStat ? textOn(fill) : th.fg;
      ctx.fillStyle = tc;
      ctx.font = `600 11px ${th.font}`;
      ctx.textBaseline = "top";
      ctx.fillText(clipText(ctx, n.label ?? id, w - (flagged ? 20 : 8)), x + 4, y + 3);
      ctx.font = `10px ${th.font}`;
      const sub = [n.kind && n.kind !== "op" ? n.kind : n.target || n.op, hasStat ? fmt(v) : ""].filter(Boolean).join(" · ");
      ctx.fillText(clipText(ctx, sub, w - 8), x + 4, y + 18);
      if (flagged) {
        ctx.fillStyle = th.error;
        ctx.beginPath();
        ctx.arc(x + w - 9, y + 9, 6, 0, Math.PI * 2);
        ctx.fill();
        ctx.fillStyle = "#fff";
        ctx.font = `bold 10px ${th.font}`;
        ctx.fillText("!", x + w - 11, y + 4);
      }
    }
    ctx.globalAlpha = 1;
  };

  const byId = new Map(nodes.map((n) => [String(n.id), n]));
  const canvas = new GraphCanvas(holder, {
    height: 520,
    drawNode,
    edgeStyle: (e, th) => {
      if (!highlight) return null;
      const on = highlight.has(layout.ids[e.s]) && highlight.has(layout.ids[e.t]);
      return on ? { color: th.accent, width: 2 } : { alpha: 0.15 };
    },
    onClick: (i) => {
      if (i < 0) return;
      model.set("selected_node", layout.ids[i]);
      model.save_changes();
    },
  });

  function paintSide() {
    const id = model.get("selected_node");
    side.replaceChildren();
    root.dataset.selected = id || "";
    const th = themeColors(root);
    if (!id || !byId.has(id)) {
      const flaggedIds = Object.keys(flags);
      const p = document.createElement("div");
      p.textContent = flaggedIds.length
        ? `${flaggedIds.length} flagged node${flaggedIds.length > 1 ? "s" : ""}; click one to inspect:`
        : "Click a node to see its statistics and histogram.";
      side.appendChild(p);
      const list = document.createElement("div");
      list.className = "hawknb-mg-flaglist";
      for (const f of flaggedIds.slice(0, 50)) {
        const b = document.createElement("button");
        b.textContent = `${byId.get(f) ? byId.get(f).label ?? f : f}: ${flags[f]}`;
        b.addEventListener("click", () => {
          model.set("selected_node", f);
          model.save_changes();
        });
        list.appendChild(b);
      }
      side.appendChild(list);
      return;
    }
    const n = byId.get(id);
    const h = document.createElement("h4");
    h.textContent = n.label ?? id;
    side.appendChild(h);
    if (flags[id] != null) {
      const f = document.createElement("div");
      f.className = "hawknb-flag";
      f.textContent = `⚠ ${flags[id]}`;
      side.appendChild(f);
    }
    const dl = document.createElement("dl");
    const add = (k, v) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    };
    add("id", id);
    for (const k of ["kind", "op", "target", "layer"]) if (n[k] != null && n[k] !== "") add(k, String(n[k]));
    if (Array.isArray(n.shape)) add("shape", `[${n.shape.join(", ")}]`);
    if (Array.isArray(n.params) && n.params.length) add("params", n.params.join(", "));
    const s = stats[id];
    if (s) {
      for (const k of [...STAT_ORDER, ...Object.keys(s).filter((q) => !STAT_ORDER.includes(q) && q !== "hist")]) {
        if (s[k] === undefined) continue;
        const v = toNum(s[k]);
        add(k, v == null ? String(s[k] ?? "–") : fmt(v, 4));
      }
    } else add("stats", "none recorded");
    side.appendChild(dl);
    if (s && s.hist) side.appendChild(histCanvas(s.hist, th));
  }

  function setWalk(dir) {
    const id = model.get("selected_node");
    walkDir = id ? dir : "";
    highlight = id && dir ? reach(adj, id, dir) : null;
    root.dataset.walk = walkDir;
    root.dataset.highlighted = String(highlight ? highlight.size : 0);
    info.textContent = highlight ? `${highlight.size} nodes ${dir === "up" ? "upstream of" : "downstream of"} ${id}` : "";
    canvas.requestDraw();
  }
  function syncButtons() {
    const has = !!model.get("selected_node");
    upBtn.disabled = !has;
    downBtn.disabled = !has;
    clearBtn.disabled = !highlight;
  }
  upBtn.addEventListener("click", () => {
    setWalk("up");
    syncButtons();
  });
  downBtn.addEventListener("click", () => {
    setWalk("down");
    syncButtons();
  });
  clearBtn.addEventListener("click", () => {
    setWalk("");
    syncButtons();
  });
  fitBtn.addEventListener("click", () => canvas.fit());
  sel.addEventListener("change", () => {
    model.set("color_by", sel.value);
    model.save_changes();
  });

  const onColor = () => {
    sel.value = model.get("color_by");
    recolor();
  };
  const onSelect = () => {
    if (walkDir) setWalk(walkDir);
    paintSide();
    syncButtons();
    canvas.requestDraw();
  };
  model.on("change:color_by", onColor);
  model.on("change:selected_node", onSelect);
  const mo = typeof MutationObserver === "function" ? new MutationObserver(() => canvas.refreshTheme()) : null;
  if (mo) mo.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  // test/benchmark hook: page coordinates of a node, and the layout facts
  root.hawknb = {
    point: (id) => (layout && layout.index.has(String(id)) ? canvas.clientPoint(layout.index.get(String(id))) : null),
    center: (id) => layout && canvas.centerOn(layout.index.get(String(id)) ?? -1, 1),
    canvas,
  };

  recolor();
  paintSide();
  syncButtons();
  let alive = true;
  layoutGraph(nodes, edges, { preset: "modelgraph", size: () => ({ width: NODE_W, height: NODE_H }) }).then((flat) => {
    if (!alive) return;
    layout = flat;
    canvas.setLayout(flat);
    canvas.draw();
    root.dataset.layoutMs = flat.ms.toFixed(0);
    root.dataset.engine = flat.engine;
    root.dataset.layout = "done";
    root.dataset.painted = String(canvas.painted || 0);
  });
  return () => {
    alive = false;
    model.off("change:color_by", onColor);
    model.off("change:selected_node", onSelect);
    if (mo) mo.disconnect();
    canvas.destroy();
  };
}

function renderWithRefresh({ model, el }) {
  let cleanup = render({ model, el });
  const again = () => {
    if (typeof cleanup === "function") cleanup();
    cleanup = render({ model, el });
  };
  const keys = ["change:_nodes", "change:_edges", "change:_stats", "change:_flags", "change:empty_reason", "change:title"];
  for (const k of keys) model.on(k, again);
  return () => {
    for (const k of keys) model.off(k, again);
    if (typeof cleanup === "function") cleanup();
  };
}

export default { render: renderWithRefresh };
