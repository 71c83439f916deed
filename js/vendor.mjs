// Copy the scripts an offline HTML report needs (require.js and the widget html-manager) from
// node_modules into hawknb/static/vendor/, gzipped, so `pip install hawknb` users without Node
// can still write reports that open with no network. Run after `npm ci` (see `make js`).
// Deterministic: Node's gzip header carries no timestamp, so a rerun gives identical bytes and
// CI's `git diff --exit-code hawknb/static` stays clean.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "hawknb", "static", "vendor");
const require = createRequire(join(here, "package.json"));

const htmlManagerPkg = require("@jupyter-widgets/html-manager/package.json");
const requirejsPkg = require("requirejs/package.json");
const files = [
  {
    name: "embed-amd.js.gz",
    from: join(here, "node_modules", "@jupyter-widgets", "html-manager", "dist", "embed-amd.js"),
    pkg: "@jupyter-widgets/html-manager",
    version: htmlManagerPkg.version,
    license: htmlManagerPkg.license,
  },
  {
    name: "require.js.gz",
    from: join(here, "node_modules", "requirejs", "require.js"),
    pkg: "requirejs",
    version: requirejsPkg.version,
    license: requirejsPkg.license,
  },
];

mkdirSync(out, { recursive: true });
const manifest = {};
for (const f of files) {
  if (!existsSync(f.from)) {
    throw new Error(`${f.from} is missing: run \`npm ci\` in js/ first`);
  }
  const gz = gzipSync(readFileSync(f.from), { level: 9 });
  writeFileSync(join(out, f.name), gz);
  manifest[f.name] = { package: f.pkg, version: f.version, license: f.license };
  console.log(`vendored ${f.pkg}@${f.version} -> ${f.name} (${gz.length} bytes)`);
}
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
