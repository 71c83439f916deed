// Number and time formatting shared by the views (pure, unit-tested).
// Stable API: formatNumber(v, digits=3), formatPercent(v, digits=1), formatTime(ms),
// formatTimeShort(ms, spanMs), formatDuration(ms), isoFromMs(ms), msFromIso(s), escapeHtml(s).

export function formatNumber(v, digits = 3) {
  if (v == null || Number.isNaN(v)) return "–";
  if (v === Infinity) return "∞";
  if (v === -Infinity) return "−∞";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(Math.max(0, digits - 1));
  return Number(v.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 });
}

export function formatPercent(v, digits = 1) {
  if (v == null || Number.isNaN(v)) return "–";
  return `${(v * 100).toFixed(digits)}%`;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

export function isoFromMs(ms) {
  return new Date(ms).toISOString();
}

export function msFromIso(s) {
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}

export function formatTime(ms) {
  if (ms == null || !Number.isFinite(ms)) return "–";
  const d = new Date(ms);
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`
  );
}

/** A short tick label whose precision follows the visible span. */
export function formatTimeShort(ms, spanMs) {
  if (ms == null || !Number.isFinite(ms)) return "";
  const d = new Date(ms);
  const date = `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  if (spanMs > 60 * 86400e3) return `${d.getUTCFullYear()}-${date}`;
  if (spanMs > 2 * 86400e3) return `${date} ${hm}`;
  return hm;
}

export function formatDuration(ms) {
  if (ms == null || !Number.isFinite(ms)) return "–";
  const s = Math.abs(ms) / 1000;
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86400) return `${(s / 3600).toFixed(s < 36000 ? 1 : 0)}h`;
  return `${(s / 86400).toFixed(s < 864000 ? 1 : 0)}d`;
}

// Names come from workspaces other teams wrote: anything put into innerHTML goes through this
// (text content and both quote styles of attribute values).
export function escapeHtml(s) {
  return String(s ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}
