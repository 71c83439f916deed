// One <canvas> per graph: a 2,000-node DAG costs two DOM nodes, not 2,000 SVG groups, so
// panning stays smooth inside a notebook cell. Pan with drag, zoom with the wheel around the
// cursor, click hit-tests the laid-out boxes. Views supply `drawNode` to paint their own
// content (stat colour, sparkline) and read theme colours through `themeColors`.

/** The JupyterLab theme colours the canvas needs, resolved from CSS variables on `el`. */
export function themeColors(el) {
  const cs = typeof getComputedStyle === "function" && el ? getComputedStyle(el) : null;
  const v = (name, fallback) => {
    const got = cs ? cs.getPropertyValue(name).trim() : "";
    return got || fallback;
  };
  return {
    bg: v("--jp-layout-color0", "#ffffff"),
    bg1: v("--jp-layout-color1", "#ffffff"),
    bg2: v("--jp-layout-color2", "#eeeeee"),
    fg: v("--jp-ui-font-color0", "rgba(0,0,0,1)"),
    fg1: v("--jp-ui-font-color1", "rgba(0,0,0,0.87)"),
    fg2: v("--jp-ui-font-color2", "rgba(0,0,0,0.54)"),
    border: v("--jp-border-color1", "#bdbdbd"),
    border2: v("--jp-border-color2", "#e0e0e0"),
    accent: v("--jp-brand-color1", "#1976d2"),
    error: v("--jp-error-color1", "#d32f2f"),
    warn: v("--jp-warn-color1", "#f57c00"),
    success: v("--jp-success-color1", "#388e3c"),
    font: v("--jp-ui-font-family", "system-ui, -apple-system, sans-serif"),
  };
}

/** The view transform that fits a width x height world into a viewport with `pad` pixels. */
export function fitTransform(worldW, worldH, viewW, viewH, pad = 16, maxScale = 1.5) {
  const w = Math.max(worldW, 1);
  const h = Math.max(worldH, 1);
  const k = Math.min(maxScale, Math.max(1e-4, Math.min((viewW - 2 * pad) / w, (viewH - 2 * pad) / h)));
  return { k, tx: (viewW - w * k) / 2, ty: (viewH - h * k) / 2 };
}

/**
 * The view of a legible fit: fitTransform, but never below `minScale` (labels stay readable;
 * a wider graph is left-aligned -- sources first -- and panned), with the viewport height cut
 * to the graph's: {k, tx, ty, height} with height in [minH, maxH].
 */
export function legibleFit(worldW, worldH, viewW, minH, maxH, { pad = 16, minScale = 0.9, maxScale = 1.3 } = {}) {
  const w = Math.max(worldW, 1);
  const h = Math.max(worldH, 1);
  let k = Math.min(maxScale, (viewW - 2 * pad) / w, (maxH - 2 * pad) / h);
  k = Math.max(k, minScale);
  const height = Math.round(Math.min(maxH, Math.max(minH, h * k + 2 * pad)));
  const tx = w * k + 2 * pad <= viewW ? (viewW - w * k) / 2 : pad;
  const ty = h * k + 2 * pad <= height ? (height - h * k) / 2 : pad;
  return { k, tx, ty, height };
}

/** Index of the node whose box contains world point (wx, wy), or -1 (topmost = last drawn). */
export function hitTest(layout, wx, wy, slack = 0) {
  const { x, y, w, h } = layout;
  for (let i = x.length - 1; i >= 0; i--) {
    if (wx >= x[i] - slack && wx <= x[i] + w[i] + slack && wy >= y[i] - slack && wy <= y[i] + h[i] + slack) return i;
  }
  return -1;
}

export class GraphCanvas {
  constructor(container, { height = 520, drawNode, onClick, edgeStyle, legible = null } = {}) {
    this.container = container;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "hawknb-graph-canvas";
    this.canvas.style.display = "block";
    this.canvas.style.width = "100%";
    this.canvas.style.height = `${height}px`;
    this.canvas.style.cursor = "grab";
    this.canvas.style.touchAction = "none";
    container.appendChild(this.canvas);
    this.height = height;
    this.drawNode = drawNode;
    this.onClick = onClick;
    this.edgeStyle = edgeStyle;
    // {minScale, minHeight}: fit() keeps labels readable and shrinks the canvas to the graph
    this.legible = legible;
    this.maxHeight = height;
    this.layout = null;
    this.view = { k: 1, tx: 0, ty: 0 };
    this.frame = 0;
    this.theme = themeColors(container);
    this._bind();
    this._resizeObserver = typeof ResizeObserver === "function" ? new ResizeObserver(() => this.resize()) : null;
    if (this._resizeObserver) this._resizeObserver.observe(this.canvas);
    this.resize();
  }

  _bind() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("pointerdown", (ev) => {
      drag = { x: ev.clientX, y: ev.clientY, tx: this.view.tx, ty: this.view.ty, moved: false };
      c.setPointerCapture && c.setPointerCapture(ev.pointerId);
      c.style.cursor = "grabbing";
    });
    c.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x;
      const dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) {
        this.view.tx = drag.tx + dx;
        this.view.ty = drag.ty + dy;
        this.requestDraw();
      }
    });
    const end = (ev) => {
      if (!drag) return;
      const wasClick = !drag.moved;
      drag = null;
      c.style.cursor = "grab";
      if (wasClick && ev.type === "pointerup") this._click(ev);
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        const r = c.getBoundingClientRect();
        const px = ev.clientX - r.left;
        const py = ev.clientY - r.top;
        const f = Math.exp(-ev.deltaY * 0.0015);
        this.zoomAt(px, py, f);
      },
      { passive: false },
    );
  }

  zoomAt(px, py, factor) {
    const k = Math.min(8, Math.max(1e-4, this.view.k * factor));
    const f = k / this.view.k;
    this.view.tx = px - (px - this.view.tx) * f;
    this.view.ty = py - (py - this.view.ty) * f;
    this.view.k = k;
    this.requestDraw();
  }

  _click(ev) {
    if (!this.layout || !this.onClick) return;
    const r = this.canvas.getBoundingClientRect();
    const wx = (ev.clientX - r.left - this.view.tx) / this.view.k;
    const wy = (ev.clientY - r.top - this.view.ty) / this.view.k;
    const i = hitTest(this.layout, wx, wy, 2 / this.view.k);
    this.onClick(i, { wx, wy, local: i >= 0 ? { x: wx - this.layout.x[i], y: wy - this.layout.y[i] } : null });
  }

  resize() {
    const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
    const w = Math.max(100, this.canvas.clientWidth || this.container.clientWidth || 800);
    const h = this.height;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      const first = !this.cssW;
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      this.cssW = w;
      this.cssH = h;
      this.dpr = dpr;
      if (first && this.layout) this.fit();
      this.requestDraw();
    }
  }

  setLayout(layout, { fit = true } = {}) {
    this.layout = layout;
    if (fit) this.fit();
    this.requestDraw();
  }

  fit() {
    if (!this.layout) return;
    if (this.legible) {
      const f = legibleFit(this.layout.width, this.layout.height, this.cssW || 800, this.legible.minHeight || 200, this.maxHeight, { minScale: this.legible.minScale || 0.9 });
      this.view = { k: f.k, tx: f.tx, ty: f.ty };
      if (f.height !== this.height) {
        this.height = f.height;
        this.canvas.style.height = `${f.height}px`;
        this.resize();
      }
    } else {
      this.view = fitTransform(this.layout.width, this.layout.height, this.cssW || 800, this.cssH || this.height);
    }
    this.requestDraw();
  }

  /** Pan (keeping the zoom, at least `minK`) so node i is centred. */
  centerOn(i, minK = 0.6) {
    if (!this.layout || i < 0) return;
    const k = Math.max(this.view.k, minK);
    const cx = this.layout.x[i] + this.layout.w[i] / 2;
    const cy = this.layout.y[i] + this.layout.h[i] / 2;
    this.view = { k, tx: (this.cssW || 800) / 2 - cx * k, ty: (this.cssH || this.height) / 2 - cy * k };
    this.requestDraw();
  }

  /** Client (page) coordinates of node i's centre plus an offset in world units; for tests. */
  clientPoint(i, dx = null, dy = null) {
    const r = this.canvas.getBoundingClientRect();
    const L = this.layout;
    const ox = dx == null ? L.w[i] / 2 : dx;
    const oy = dy == null ? L.h[i] / 2 : dy;
    return { x: r.left + this.view.tx + (L.x[i] + ox) * this.view.k, y: r.top + this.view.ty + (L.y[i] + oy) * this.view.k };
  }

  refreshTheme() {
    this.theme = themeColors(this.container);
    this.requestDraw();
  }

  requestDraw() {
    if (this.frame) return;
    const raf = typeof requestAnimationFrame === "function" ? requestAnimationFrame : (f) => setTimeout(f, 0);
    this.frame = raf(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /** Draw now (synchronously); returns the number of nodes painted (after culling). */
  draw() {
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return 0;
    const { k, tx, ty } = this.view;
    const dpr = this.dpr || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = this.theme.bg;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    const L = this.layout;
    if (!L) return 0;
    ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * tx, dpr * ty);
    // visible world rectangle, for culling
    const x0 = -tx / k;
    const y0 = -ty / k;
    const x1 = x0 + (this.cssW || 800) / k;
    const y1 = y0 + (this.cssH || this.height) / k;
    // edges
    ctx.lineWidth = 1 / k;
    for (const e of L.edges) {
      const p = e.pts;
      let minx = Infinity;
      let maxx = -Infinity;
      let miny = Infinity;
      let maxy = -Infinity;
      for (let j = 0; j < p.length; j += 2) {
        if (p[j] < minx) minx = p[j];
        if (p[j] > maxx) maxx = p[j];
        if (p[j + 1] < miny) miny = p[j + 1];
        if (p[j + 1] > maxy) maxy = p[j + 1];
      }
      if (maxx < x0 || minx > x1 || maxy < y0 || miny > y1) continue;
      const st = this.edgeStyle ? this.edgeStyle(e, this.theme) : null;
      ctx.strokeStyle = (st && st.color) || this.theme.border;
      ctx.globalAlpha = st && st.alpha != null ? st.alpha : 1;
      ctx.lineWidth = ((st && st.width) || 1) / Math.max(k, 0.5);
      ctx.beginPath();
      ctx.moveTo(p[0], p[1]);
      for (let j = 2; j < p.length; j += 2) ctx.lineTo(p[j], p[j + 1]);
      ctx.stroke();
      if (k > 0.35) {
        // arrowhead at the target end
        const n = p.length;
        const ax = p[n - 2];
        const ay = p[n - 1];
        const ang = Math.atan2(ay - p[n - 3], ax - p[n - 4]);
        ctx.fillStyle = ctx.strokeStyle;
        ctx.beginPath();
        ctx.moveTo(ax, ay);
        ctx.lineTo(ax - 6 * Math.cos(ang - 0.4), ay - 6 * Math.sin(ang - 0.4));
        ctx.lineTo(ax - 6 * Math.cos(ang + 0.4), ay - 6 * Math.sin(ang + 0.4));
        ctx.closePath();
        ctx.fill();
      }
    }
    ctx.globalAlpha = 1;
    let painted = 0;
    for (let i = 0; i < L.x.length; i++) {
      if (L.x[i] + L.w[i] < x0 || L.x[i] > x1 || L.y[i] + L.h[i] < y0 || L.y[i] > y1) continue;
      painted++;
      if (this.drawNode) this.drawNode(ctx, i, k, this.theme);
    }
    this.painted = painted;
    return painted;
  }

  destroy() {
    if (this._resizeObserver) this._resizeObserver.disconnect();
    this.canvas.remove();
  }
}

/** Rounded rectangle path (Path2D-free so it works on every canvas). */
export function roundRect(ctx, x, y, w, h, r) {
  const rr = Math.min(r, w / 2, h / 2);
  ctx.beginPath();
  ctx.moveTo(x + rr, y);
  ctx.lineTo(x + w - rr, y);
  ctx.quadraticCurveTo(x + w, y, x + w, y + rr);
  ctx.lineTo(x + w, y + h - rr);
  ctx.quadraticCurveTo(x + w, y + h, x + w - rr, y + h);
  ctx.lineTo(x + rr, y + h);
  ctx.quadraticCurveTo(x, y + h, x, y + h - rr);
  ctx.lineTo(x, y + rr);
  ctx.quadraticCurveTo(x, y, x + rr, y);
  ctx.closePath();
}

/** Clip text to `maxW` pixels with an ellipsis (measures once per call; cheap for short labels). */
export function clipText(ctx, text, maxW) {
  const s = String(text ?? "");
  if (ctx.measureText(s).width <= maxW) return s;
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`${s.slice(0, mid)}…`).width <= maxW) lo = mid;
    else hi = mid - 1;
  }
  return `${s.slice(0, lo)}…`;
}

/** Draw a sparkline of `values` inside (x, y, w, h); `mark` is an index to draw a vertical rule at. */
export function sparkline(ctx, values, x, y, w, h, { color, mark = -1, markColor, lineWidth = 1 } = {}) {
  const n = values ? values.length : 0;
  if (n < 2) return;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v == null || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo)) return;
  if (hi - lo < 1e-12) {
    lo -= 1;
    hi += 1;
  }
  if (mark >= 0 && mark < n) {
    ctx.strokeStyle = markColor || color;
    ctx.lineWidth = lineWidth;
    ctx.setLineDash([2, 2]);
    ctx.beginPath();
    const mx = x + (mark / (n - 1)) * w;
    ctx.moveTo(mx, y);
    ctx.lineTo(mx, y + h);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = lineWidth;
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v == null || !Number.isFinite(v)) {
      pen = false;
      continue;
    }
    const px = x + (i / (n - 1)) * w;
    const py = y + h - ((v - lo) / (hi - lo)) * h;
    if (pen) ctx.lineTo(px, py);
    else ctx.moveTo(px, py);
    pen = true;
  }
  ctx.stroke();
}
