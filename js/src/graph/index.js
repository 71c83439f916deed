// The graph views (LineageExplorer, ModelGraphTensorViewer) in one bundle: both lay out with
// elkjs (about 1.4 MB minified), which is shipped once this way instead of once per view.
// Each widget names its view in the synced trait `_graph_view`.
import lineage from "../lineage/index.js";
import modelgraph from "../modelgraph/index.js";

export const VIEWS = { lineage, modelgraph };

function render(ctx) {
  const name = ctx.model.get("_graph_view");
  const view = VIEWS[name];
  if (!view) {
    ctx.el.textContent = `hawknb: unknown graph view ${JSON.stringify(name)}`;
    return undefined;
  }
  return view.render(ctx);
}

export default { render };
