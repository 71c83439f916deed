// Shared pieces of the hawknb views; import from "../_shared/index.js".
export * from "./arrow.js";
export * from "./comm.js";
export * from "./downsample.js";
export * from "./empty.js";
export * from "./format.js";
export * from "./theme.js";

import { renderEmpty } from "./empty.js";
import { BASE_CSS, ensureStyle } from "./theme.js";

/**
 * Common view scaffolding: a root div with the view's class, the theme CSS, an optional title,
 * and the empty state when `model.get("empty_reason")` is set. Returns {root, body}; body is
 * null when the empty state was rendered (the caller then stops).
 */
export function scaffold(el, model, className, css = "") {
  ensureStyle("hawknb-base-css", BASE_CSS);
  if (css) ensureStyle(`${className}-css`, css);
  el.replaceChildren();
  const root = document.createElement("div");
  root.className = `hawknb-root ${className}`;
  el.appendChild(root);
  const title = model.get("title");
  if (title) {
    const h = document.createElement("div");
    h.className = "hawknb-title";
    h.textContent = title;
    root.appendChild(h);
  }
  const reason = model.get("empty_reason");
  if (reason) {
    root.dataset.empty = "true";
    renderEmpty(root, reason);
    return { root, body: null };
  }
  root.dataset.empty = "false";
  const body = document.createElement("div");
  body.className = "hawknb-body";
  root.appendChild(body);
  return { root, body };
}
