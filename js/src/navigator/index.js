// InvestigationNavigator: breadcrumbs + a tree of steps; click -> model "selected_step" and
// "selected_view" (the index of its view, which a front-end link copies to the view stack, so
// the view switches with no kernel too: saved notebooks, offline reports).
// Root: div.hawknb-navigator[data-steps][data-selected]; steps: .hawknb-step[data-step-id]
//   [data-status][data-selected]; crumbs: .hawknb-crumb[data-step-id]
import { escapeHtml, formatPercent, scaffold } from "../_shared/index.js";
import { childrenOf, pathTo, STATUS_ICON, statusCounts, viewIndex } from "./logic.js";

const CSS = `
/* the view stack is a flex row: its view takes the full width, not the width of its content
   (a canvas view sized by its own last measurement would stay narrow) */
.hawknb-view-stack > .lm-Widget { flex: 1 1 100%; min-width: 0; }
.hawknb-navigator .hawknb-crumbs { display: flex; flex-wrap: wrap; gap: 4px; align-items: center;
  margin: 0 0 6px; font-size: var(--jp-ui-font-size1, 13px); }
.hawknb-navigator .hawknb-crumb { cursor: pointer; color: var(--jp-content-link-color, #1976d2); }
.hawknb-navigator .hawknb-crumb:last-child { color: var(--jp-ui-font-color0, #111); font-weight: 600; }
.hawknb-navigator .hawknb-sep { color: var(--jp-ui-font-color3, #aaa); }
.hawknb-navigator ul { list-style: none; margin: 0; padding-left: 18px; }
.hawknb-navigator > .hawknb-body > ul { padding-left: 0; }
.hawknb-navigator .hawknb-step { display: flex; gap: 8px; align-items: baseline; padding: 3px 6px;
  border-radius: 3px; cursor: pointer; border: 1px solid transparent; }
.hawknb-navigator .hawknb-step:hover { background: var(--jp-layout-color2, #eee); }
.hawknb-navigator .hawknb-step[data-selected="true"] { background: var(--jp-layout-color2, #e8eef8);
  border-color: var(--jp-brand-color1, #1976d2); }
.hawknb-navigator .hawknb-icon { width: 1.2em; text-align: center; }
.hawknb-navigator [data-status="done"] .hawknb-icon { color: var(--jp-success-color1, #388e3c); }
.hawknb-navigator [data-status="warning"] .hawknb-icon { color: var(--jp-warn-color1, #f57c00); }
.hawknb-navigator [data-status="failed"] .hawknb-icon { color: var(--jp-error-color1, #d32f2f); }
.hawknb-navigator [data-status="skipped"] { color: var(--jp-ui-font-color2, #777); }
.hawknb-navigator .hawknb-decision { color: var(--jp-ui-font-color2, #666); flex: 1; }
.hawknb-navigator .hawknb-conf { font-variant-numeric: tabular-nums; color: var(--jp-ui-font-color2, #666); }
.hawknb-navigator .hawknb-hasview::after { content: " ▸"; color: var(--jp-brand-color1, #1976d2); }
`;

function render({ model, el }) {
  const { root, body } = scaffold(el, model, "hawknb-navigator", CSS);
  const steps = model.get("steps") || [];
  root.dataset.steps = String(steps.length);
  if (!body) return () => {};
  const kids = childrenOf(steps);
  const withViews = new Set(model.get("with_views") || []);
  const crumbs = document.createElement("div");
  crumbs.className = "hawknb-crumbs";
  body.appendChild(crumbs);
  const nodes = new Map();

  const choose = (id) => {
    model.set("selected_step", id);
    model.set("selected_view", viewIndex(model.get("with_views"), id));
    model.save_changes();
  };

  const build = (parentId) => {
    const ul = document.createElement("ul");
    for (const s of kids.get(parentId) || []) {
      const li = document.createElement("li");
      const row = document.createElement("div");
      row.className = "hawknb-step";
      row.dataset.stepId = s.id;
      row.dataset.status = s.status;
      row.setAttribute("role", "treeitem");
      row.tabIndex = 0;
      const conf = s.confidence == null ? "" : formatPercent(s.confidence, 0);
      row.innerHTML =
        `<span class="hawknb-icon" title="${escapeHtml(s.status)}">${STATUS_ICON[s.status] || "•"}</span>` +
        `<span class="hawknb-step-title${withViews.has(s.id) ? " hawknb-hasview" : ""}">${escapeHtml(s.title)}</span>` +
        `<span class="hawknb-decision">${escapeHtml(s.decision)}</span>` +
        `<span class="hawknb-conf" title="confidence">${escapeHtml(conf)}</span>`;
      row.addEventListener("click", () => choose(s.id));
      row.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") choose(s.id);
      });
      nodes.set(s.id, row);
      li.appendChild(row);
      if (kids.has(s.id)) li.appendChild(build(s.id));
      ul.appendChild(li);
    }
    return ul;
  };
  const tree = build("");
  tree.setAttribute("role", "tree");
  body.appendChild(tree);
  const counts = statusCounts(steps);
  const summary = document.createElement("div");
  summary.className = "hawknb-toolbar";
  summary.textContent = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(" · ");
  body.appendChild(summary);

  const update = () => {
    const sel = model.get("selected_step") || "";
    root.dataset.selected = sel;
    for (const [id, row] of nodes) row.dataset.selected = String(id === sel);
    const path = pathTo(steps, sel);
    crumbs.replaceChildren();
    const home = document.createElement("span");
    home.className = "hawknb-crumb";
    home.dataset.stepId = "";
    home.textContent = "Investigation";
    home.addEventListener("click", () => choose(""));
    crumbs.appendChild(home);
    for (const s of path) {
      const sep = document.createElement("span");
      sep.className = "hawknb-sep";
      sep.textContent = "›";
      const c = document.createElement("span");
      c.className = "hawknb-crumb";
      c.dataset.stepId = s.id;
      c.textContent = s.title;
      c.addEventListener("click", () => choose(s.id));
      crumbs.append(sep, c);
    }
  };
  update();
  model.on("change:selected_step", update);
  return () => model.off("change:selected_step", update);
}

export default { render };
