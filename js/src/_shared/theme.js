// JupyterLab light/dark theming through its CSS variables, with fallbacks outside Lab.
// Stable API:
//   BASE_CSS                 CSS text for .hawknb-root, .hawknb-title, .hawknb-empty, ...
//   ensureStyle(id, css)     inject a <style> once per document (idempotent)
//   cssVar(el, name, fallback) -> string   the computed value of a CSS variable at el
//   palette(el) -> {fg, fg2, bg, bg2, border, accent, warn, error, ok, band, series: [...]}
//       colours for canvas drawing (canvas cannot use var(...) directly)
export const BASE_CSS = `
.hawknb-root { font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  font-size: var(--jp-ui-font-size1, 13px); color: var(--jp-ui-font-color0, #111);
  background: var(--jp-layout-color0, #fff); box-sizing: border-box; padding: 4px 2px;
  position: relative; }
.hawknb-root * { box-sizing: border-box; }
.hawknb-title { font-weight: 600; font-size: var(--jp-ui-font-size2, 15px); margin: 2px 0 6px; }
.hawknb-empty { padding: 14px 12px; border: 1px dashed var(--jp-border-color1, #bbb);
  color: var(--jp-ui-font-color2, #666); background: var(--jp-layout-color1, #fafafa);
  border-radius: 4px; }
.hawknb-error { padding: 6px 10px; color: var(--jp-error-color1, #d32f2f);
  border-left: 3px solid var(--jp-error-color1, #d32f2f); margin: 4px 0; }
.hawknb-toolbar { display: flex; gap: 6px; align-items: center; margin: 2px 0 4px;
  color: var(--jp-ui-font-color2, #666); font-size: var(--jp-ui-font-size0, 11px); }
.hawknb-toolbar button { font: inherit; color: var(--jp-ui-font-color1, #333);
  background: var(--jp-layout-color2, #eee); border: 1px solid var(--jp-border-color1, #bbb);
  border-radius: 3px; padding: 1px 8px; cursor: pointer; }
.hawknb-toolbar button:disabled { opacity: .5; cursor: default; }
.hawknb-legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: var(--jp-ui-font-size0, 11px);
  color: var(--jp-ui-font-color2, #666); }
.hawknb-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 4px; vertical-align: middle; }
`;

export function ensureStyle(id, css) {
  if (typeof document === "undefined") return;
  if (document.getElementById(id)) return;
  const style = document.createElement("style");
  style.id = id;
  style.textContent = css;
  document.head.appendChild(style);
}

export function cssVar(el, name, fallback) {
  try {
    const v = getComputedStyle(el).getPropertyValue(name).trim();
    return v || fallback;
  } catch {
    return fallback;
  }
}

export function palette(el) {
  return {
    fg: cssVar(el, "--jp-ui-font-color0", "#111"),
    fg2: cssVar(el, "--jp-ui-font-color2", "#666"),
    bg: cssVar(el, "--jp-layout-color0", "#fff"),
    bg2: cssVar(el, "--jp-layout-color2", "#eee"),
    border: cssVar(el, "--jp-border-color2", "#ddd"),
    accent: cssVar(el, "--jp-brand-color1", "#1976d2"),
    warn: cssVar(el, "--jp-warn-color1", "#f57c00"),
    error: cssVar(el, "--jp-error-color1", "#d32f2f"),
    ok: cssVar(el, "--jp-success-color1", "#388e3c"),
    band: "rgba(211, 47, 47, 0.16)",
    series: ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"],
  };
}
