// The "nothing to show, because ..." state every view renders instead of failing silently.
// Stable API:
//   renderEmpty(el, reason) -> HTMLElement   div.hawknb-empty[data-empty-reason]
//   renderError(el, message) -> HTMLElement  div.hawknb-error (a caught render error, shown)
//   allNaN(arrayLike) -> boolean             true when no finite value is present
export function renderEmpty(el, reason) {
  const div = document.createElement("div");
  div.className = "hawknb-empty";
  const text = reason && String(reason).trim() ? String(reason).trim() : "there is no data";
  div.dataset.emptyReason = text;
  div.textContent = `Nothing to show, because ${text}.`;
  el.appendChild(div);
  return div;
}

export function renderError(el, message) {
  const div = document.createElement("div");
  div.className = "hawknb-error";
  div.textContent = `hawknb could not draw this view: ${message}`;
  el.appendChild(div);
  return div;
}

export function allNaN(values) {
  if (!values) return true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v != null && Number.isFinite(v)) return false;
  }
  return true;
}
