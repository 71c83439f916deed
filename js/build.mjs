// Bundle every js/src/<view>/index.js (folders starting with "_" hold shared code) into hawknb/static/<view>.js (ESM, as anywidget wants).
// Views listed in INSIDE are not bundles of their own: another bundle imports them (the graph
// views share elkjs, so js/src/graph bundles both and it is shipped once).
// Deterministic output: CI rebuilds and fails when the committed bundle differs.
import { build } from "esbuild";
import { readdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const out = join(here, "..", "hawknb", "static");
const INSIDE = new Set(["lineage", "modelgraph"]); // bundled into graph.js
const views = readdirSync(src, { withFileTypes: true })
  .filter((d) => d.isDirectory() && !d.name.startsWith("_") && !INSIDE.has(d.name) && existsSync(join(src, d.name, "index.js")))
  .map((d) => d.name);

await Promise.all(
  views.map((view) =>
    build({
      entryPoints: [join(src, view, "index.js")],
      outfile: join(out, `${view}.js`),
      bundle: true,
      format: "esm",
      minify: true,
      target: "es2020",
      legalComments: "none",
      loader: { ".css": "text" },
      logLevel: "warning",
    }),
  ),
);
console.log(`built ${views.length} views into ${out}: ${views.join(", ")}`);
