// LineageExplorer: the upstream lineage of a feature, left (sources) to right (the feature),
// each node with a sparkline of its statistic around the onset, the ranked root-cause
// candidates highlighted and the blast radius marked. Starts k hops upstream of the focus;
// "+" on a node's left edge expands its parents, "−" collapses what is upstream of it.
import { ensureStyle, scaffold } from "../_shared/index.js";
import { GraphCanvas, clipText, roundRect, sparkline, themeColors } from "../_graph/canvas.js";
import { fmt, toNum } from "../_graph/colors.js";
import { layoutGraph } from "../_graph/layout.js";
import { adjacency, inducedEdges } from "../_graph/walk.js";
import { collapse, expand, hiddenParents, initialVisible, onsetIndex } from "./state.js";

export const NODE_W = 190;
export const NODE_H = 54;
const BADGE = 16; // the +/− hit area at the node's left edge, world px

const CSS = `
.hawknb-lineage { width: 100%; box-sizing: border-box; }
.hawknb-lineage .hawknb-ln-main { display: flex; gap: 8px; align-items: stretch; width: 100%; }
/* basis 0: the canvas's own pixel width must not size the view (it is measured from the view) */
.hawknb-lineage .hawknb-ln-canvas { flex: 1 1 0; min-width: 200px; overflow: hidden;
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; }
.hawknb-lineage .hawknb-ln-side { flex: 0 0 260px; max-height: 560px; overflow-y: auto;
  font-size: var(--jp-ui-font-size1, 12px); color: var(--jp-ui-font-color1, #333); }
.hawknb-lineage .hawknb-ln-side h4 { margin: 4px 0; font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color0, #111); word-break: break-all; }
.hawknb-lineage .hawknb-cand { display: grid; grid-template-columns: 24px 1fr auto; gap: 4px; width: 100%;
  text-align: left; font: inherit; margin: 1px 0; padding: 2px 4px; cursor: pointer;
  color: var(--jp-ui-font-color1, #333); background: var(--jp-layout-color2, #eee);
  border: 1px solid var(--jp-border-color2, #ddd); border-radius: 3px; }
.hawknb-lineage .hawknb-cand.selected { border-color: var(--jp-brand-color1, #1976d2); }
.hawknb-lineage .hawknb-cand span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.hawknb-lineage dl { display: grid; grid-template-columns: auto 1fr; gap: 1px 8px; margin: 4px 0; }
.hawknb-lineage dt { color: var(--jp-ui-font-color2, #666); }
.hawknb-lineage dd { margin: 0; word-break: break-all; }
`;

function render({ model, el }) {
  ensureStyle("hawknb-lineage-css", CSS);
  const { root, body } = scaffold(el, model, "hawknb-lineage");
  if (!body) return undefined;
  const nodes = model.get("_nodes") || [];
  const edges = model.get("_edges") || [];
  const series = model.get("_series") || {};
  const candidates = model.get("_candidates") || [];
  const blast = new Set((model.get("_blast_radius") || []).map(String));
  const focus = model.get("focus") || null;
  const hops = model.get("hops");
  const byId = new Map(nodes.map((n) => [String(n.id), n]));
  const cand = new Map(candidates.map((c) => [String(c.node), c]));
  const adj = adjacency(edges);
  const allIds = nodes.map((n) => String(n.id));
  root.dataset.nodes = String(nodes.length);
  root.dataset.edges = String(edges.length);
  root.dataset.candidates = String(candidates.length);
  root.dataset.blast = String(blast.size);
  root.dataset.focus = focus || "";

  const initial = () => initialVisible(allIds, edges, { focus, hops, pinned: candidates.map((c) => c.node) });
  let visible = initial();
  let layout = null;
  let generation = 0;

  const bar = document.createElement("div");
  bar.className = "hawknb-toolbar";
  const mk = (cls, text, title) => {
    const b = document.createElement("button");
    b.className = cls;
    b.textContent = text;
    b.title = title;
    bar.appendChild(b);
    return b;
  };
  const resetBtn = mk("hawknb-ln-reset", `reset (${hops} hop${hops === 1 ? "" : "s"})`, "back to the starting view: k hops upstream of the focus plus the candidates");
  const allBtn = mk("hawknb-ln-all", "expand all", "show the whole lineage graph");
  const blastBtn = mk("hawknb-ln-blast", `show blast radius (${blast.size})`, "add every node in the blast radius");
  blastBtn.disabled = blast.size === 0;
  const fitBtn = mk("hawknb-ln-fit", "fit", "fit the graph to the view");
  const info = document.createElement("span");
  info.className = "hawknb-ln-info";
  bar.appendChild(info);
  body.appendChild(bar);

  const main = document.createElement("div");
  main.className = "hawknb-ln-main";
  const holder = document.createElement("div");
  holder.className = "hawknb-ln-canvas";
  const side = document.createElement("div");
  side.className = "hawknb-ln-side";
  main.append(holder, side);
  body.appendChild(main);

  const drawNode = (ctx, i, k, th) => {
    const id = layout.ids[i];
    const n = byId.get(id) || { id };
    const x = layout.x[i];
    const y = layout.y[i];
    const w = layout.w[i];
    const h = layout.h[i];
    const c = cand.get(id);
    const selected = model.get("selected_node") === id;
    const inBlast = blast.has(id);
    roundRect(ctx, x, y, w, h, 5);
    ctx.fillStyle = c ? th.bg2 : th.bg1;
    ctx.fill();
    if (c) {
      ctx.globalAlpha = 0.18 + 0.3 * Math.min(1, Math.max(0, toNum(c.confidence) ?? 0.5));
      ctx.fillStyle = th.warn;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
    if (inBlast) ctx.setLineDash([5, 3]);
    ctx.lineWidth = (selected || id === focus ? 3 : c || inBlast ? 2 : 1) / Math.max(k, 0.3);
    ctx.strokeStyle = selected ? th.accent : id === focus ? th.fg : c ? th.warn : inBlast ? th.error : th.border;
    ctx.stroke();
    ctx.setLineDash([]);
    if (k < 0.22) return;
    const hid = hiddenParents(adj, visible, id).length;
    const hasShownParents = (adj.parents.get(id) || []).some((p) => visible.has(p));
    const left = x + (hid || hasShownParents ? BADGE + 2 : 6);
    ctx.fillStyle = th.fg;
    ctx.textBaseline = "top";
    ctx.font = `600 11px ${th.font}`;
    const label = n.name || id;
    const badgeText = c ? `#${c.rank} ${fmt(toNum(c.score), 2)}` : "";
    ctx.font = `bold 10px ${th.font}`;
    const bw = badgeText ? ctx.measureText(badgeText).width + 8 : 0;
    ctx.font = `600 11px ${th.font}`;
    ctx.fillText(clipText(ctx, label, x + w - left - bw - 4), left, y + 4);
    ctx.font = `10px ${th.font}`;
    ctx.fillStyle = th.fg2;
    ctx.fillText(clipText(ctx, n.kind || "", w - (left - x) - 6), left, y + 17);
    if (badgeText) {
      ctx.fillStyle = th.warn;
      roundRect(ctx, x + w - bw - 3, y + 3, bw, 13, 3);
      ctx.fill();
      ctx.fillStyle = "#fff";
      ctx.font = `bold 10px ${th.font}`;
      ctx.fillText(badgeText, x + w - bw + 1, y + 4);
    }
    const s = series[id];
    if (s && s.value && s.value.length > 1) {
      const vals = s.value.map((v) => (v == null ? Number.NaN : toNum(v)));
      sparkline(ctx, vals, left, y + 30, x + w - left - 6, h - 34, {
        color: c ? th.warn : th.accent,
        mark: onsetIndex(s.ts, s.onset),
        markColor: th.error,
        lineWidth: 1.2 / Math.max(k, 0.5),
      });
    }
    if (hid || hasShownParents) {
      // +/− at the left edge: expand hidden parents / collapse what is upstream
      ctx.fillStyle = hid ? th.accent : th.bg2;
      roundRect(ctx, x + 2, y + h / 2 - BADGE / 2, BADGE - 2, BADGE, 3);
      ctx.fill();
      ctx.fillStyle = hid ? "#fff" : th.fg;
      ctx.font = `bold 12px ${th.font}`;
      ctx.textBaseline = "middle";
      ctx.fillText(hid ? "+" : "−", x + 5, y + h / 2 + 1);
    }
  };

  const canvas = new GraphCanvas(holder, {
    height: 560,
    legible: { minScale: 0.95, minHeight: 180 },
    drawNode,
    edgeStyle: (e, th) => {
      const s = layout.ids[e.s];
      const t = layout.ids[e.t];
      if (cand.has(s) || (blast.has(s) && blast.has(t))) return { color: th.warn, width: 1.6 };
      return null;
    },
    onClick: (i, hit) => {
      if (i < 0) return;
      const id = layout.ids[i];
      if (hit.local && hit.local.x <= BADGE + 2) {
        const hid = hiddenParents(adj, visible, id).length;
        if (hid) setVisible(expand(adj, visible, id), id);
        else if ((adj.parents.get(id) || []).some((p) => visible.has(p))) setVisible(collapse(adj, visible, id, focus), id);
        return;
      }
      model.set("selected_node", id);
      model.save_changes();
    },
  });

  function paintSide() {
    side.replaceChildren();
    const sel = model.get("selected_node");
    root.dataset.selected = sel || "";
    const th = themeColors(root);
    if (sel && byId.has(sel)) {
      const n = byId.get(sel);
      const h = document.createElement("h4");
      h.textContent = n.name || sel;
      side.appendChild(h);
      const dl = document.createElement("dl");
      const add = (k, v) => {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = v;
        dl.append(dt, dd);
      };
      add("id", sel);
      if (n.kind) add("kind", n.kind);
      add("parents", String((adj.parents.get(sel) || []).length));
      add("children", String((adj.children.get(sel) || []).length));
      const c = cand.get(sel);
      if (c) {
        add("candidate", `#${c.rank}`);
        add("score", fmt(toNum(c.score), 3));
        if (c.confidence != null) add("confidence", fmt(toNum(c.confidence), 3));
      }
      if (blast.has(sel)) add("blast radius", "yes");
      side.appendChild(dl);
      const s = series[sel];
      if (s && s.value && s.value.length > 1) {
        const dpr = window.devicePixelRatio || 1;
        const cv = document.createElement("canvas");
        cv.className = "hawknb-ln-spark-large";
        cv.width = 250 * dpr;
        cv.height = 80 * dpr;
        cv.style.width = "250px";
        cv.style.height = "80px";
        const ctx = cv.getContext("2d");
        if (ctx) {
          ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
          sparkline(ctx, s.value.map((v) => (v == null ? Number.NaN : toNum(v))), 2, 4, 246, 72, { color: th.accent, mark: onsetIndex(s.ts, s.onset), markColor: th.error, lineWidth: 1.5 });
        }
        side.appendChild(cv);
      }
    }
    const hc = document.createElement("h4");
    hc.textContent = candidates.length ? "Root-cause candidates" : "No root-cause candidates";
    side.appendChild(hc);
    for (const c of candidates) {
      const b = document.createElement("button");
      b.className = `hawknb-cand${c.node === sel ? " selected" : ""}`;
      b.dataset.node = c.node;
      const r = document.createElement("span");
      r.textContent = `#${c.rank}`;
      const nm = document.createElement("span");
      nm.textContent = (byId.get(String(c.node)) || {}).name || c.node;
      const sc = document.createElement("span");
      sc.textContent = `${fmt(toNum(c.score), 2)}${c.confidence != null ? ` (${fmt(toNum(c.confidence), 2)})` : ""}`;
      b.append(r, nm, sc);
      b.addEventListener("click", () => {
        if (!visible.has(String(c.node))) setVisible(new Set([...visible, String(c.node)]), String(c.node));
        else if (layout) canvas.centerOn(layout.index.get(String(c.node)));
        model.set("selected_node", String(c.node));
        model.save_changes();
      });
      side.appendChild(b);
    }
  }

  function setVisible(next, anchor = null) {
    visible = next;
    const gen = ++generation;
    root.dataset.layout = "pending";
    root.dataset.visibleNodes = String(visible.size);
    const shownNodes = nodes.filter((n) => visible.has(String(n.id)));
    const shownEdges = inducedEdges(edges, visible);
    info.textContent = `${visible.size} of ${nodes.length} nodes`;
    const keepView = anchor != null && layout != null;
    return layoutGraph(shownNodes, shownEdges, { preset: "lineage", size: () => ({ width: NODE_W, height: NODE_H }) }).then((flat) => {
      if (gen !== generation || !alive) return;
      layout = flat;
      canvas.setLayout(flat, { fit: !keepView });
      if (keepView && flat.index.has(anchor)) canvas.centerOn(flat.index.get(anchor));
      canvas.draw();
      root.dataset.layoutMs = flat.ms.toFixed(0);
      root.dataset.engine = flat.engine;
      root.dataset.layout = "done";
      root.dataset.painted = String(canvas.painted || 0);
    });
  }

  resetBtn.addEventListener("click", () => setVisible(initial()));
  allBtn.addEventListener("click", () => setVisible(new Set(allIds)));
  blastBtn.addEventListener("click", () => setVisible(new Set([...visible, ...[...blast].filter((b) => byId.has(b))])));
  fitBtn.addEventListener("click", () => canvas.fit());
  const onSelect = () => {
    paintSide();
    canvas.requestDraw();
  };
  model.on("change:selected_node", onSelect);
  const mo = typeof MutationObserver === "function" ? new MutationObserver(() => canvas.refreshTheme()) : null;
  if (mo) mo.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  root.hawknb = {
    point: (id) => (layout && layout.index.has(String(id)) ? canvas.clientPoint(layout.index.get(String(id))) : null),
    plusPoint: (id) => (layout && layout.index.has(String(id)) ? canvas.clientPoint(layout.index.get(String(id)), BADGE / 2, NODE_H / 2) : null),
    center: (id) => layout && canvas.centerOn(layout.index.get(String(id)) ?? -1, 1),
    expandAll: () => setVisible(new Set(allIds)),
    visible: () => [...visible],
    canvas,
  };

  let alive = true;
  paintSide();
  setVisible(visible);
  return () => {
    alive = false;
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
  const keys = ["change:_nodes", "change:_edges", "change:_series", "change:_candidates", "change:_blast_radius", "change:focus", "change:hops", "change:empty_reason", "change:title"];
  for (const k of keys) model.on(k, again);
  return () => {
    for (const k of keys) model.off(k, again);
    if (typeof cleanup === "function") cleanup();
  };
}

export default { render: renderWithRefresh };
