"""AnomalyTimeline with a year of minutely data (525,600 points): cell execution -> rendered chart.

What the on-call engineer waits for: from the moment the cell that builds and displays the
timeline starts executing (kernel clock, ``time.time()``) until the chart's canvas is in the
page (browser clock, ``Date.now()`` from a MutationObserver; same machine, same clock). It runs
in a real JupyterLab in headless Debian Chromium (the harness of tests/ui/conftest.py),
so it includes widget construction (downsampling, Arrow encoding), the comm round trip,
loading the bundle and uPlot's first paint. Data generation runs in an earlier, untimed cell.

Also reported: bytes on the wire for the initial state (Arrow overview + JSON traits) against
the raw float64 size of the series, and the zoom round trip (detail request -> chart updated)
with the bytes of its reply.

    .venv/bin/python benchmarks/timeline_render.py [--repeat 3] [--points 525600]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "ui"))

from conftest import CHROMIUM, CHROMIUM_ARGS, Lab, LabServer  # noqa: E402

DATA_CELL = """
import datetime as dt, time
import numpy as np, polars as pl
from hawknb.widgets import AnomalyTimeline
n = {n}
t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
ts = pl.datetime_range(t0, t0 + dt.timedelta(minutes=n - 1), "1m", eager=True, time_zone="UTC")
rng = np.random.default_rng(0)
v = 10 + np.sin(np.arange(n) / 1440 * 2 * np.pi) + rng.normal(0, 0.2, n)
v[n // 2 : n // 2 + 600] -= 3
series = pl.DataFrame({{"ts": ts, "value": v, "lower": v * 0 + 8.5, "upper": v * 0 + 11.5}})
windows = [{{"onset": ts[n // 2], "end": ts[n // 2 + 600], "direction": "down", "severity": 6.0}}]
"""
TIMED_CELL = """
t_start = time.time()
tl = AnomalyTimeline(series, windows=windows, title="a year, minutely")
t_built = time.time()
tl
"""

OBSERVE = """() => {
  window.__tl_rendered = null;
  const obs = new MutationObserver(() => {
    if (!window.__tl_rendered && document.querySelector('.hawknb-timeline canvas')) {
      window.__tl_rendered = Date.now();
      obs.disconnect();
    }
  });
  obs.observe(document.body, {childList: true, subtree: true});
}"""


def run_once(lab: Lab, i: int, n: int) -> dict[str, float]:
    name = f"bench_timeline_{i}.ipynb"
    lab.write_notebook(name, [DATA_CELL.format(n=n), TIMED_CELL])
    lab.open(name)
    lab.page.evaluate(OBSERVE)
    lab.run_all(timeout=120_000)
    lab.page.wait_for_function("() => window.__tl_rendered", timeout=60_000)
    rendered = lab.page.evaluate("() => window.__tl_rendered")
    k = lab.kernel_json(
        "{'t_start': t_start, 't_built': t_built, 'state': tl.state_bytes(), "
        "'data': tl.get_state()['data'].nbytes, 'esm': len(str(tl._esm)), 'sent': tl.sent_points, 'total': tl.total_points}"
    )
    # zoom: click on the middle tenth, then "Zoom to selection" -> detail request -> update
    lab.kernel_eval(
        "lo, hi = tl.x_range; w = (hi - lo) / 10\ntl.select(lo + 4.5 * w, lo + 5.5 * w)"
    )
    lab.page.wait_for_selector(".hawknb-timeline[data-selection*='Z/']")
    t0 = lab.page.evaluate("() => performance.now()")
    lab.page.locator(".hawknb-timeline .hawknb-zoom").click()
    lab.page.wait_for_selector(".hawknb-timeline[data-detail-loaded='1']", timeout=30_000)
    t1 = lab.page.evaluate("() => performance.now()")
    replied = int(lab.kernel_eval("print(tl.bytes_replied)"))
    return {
        "render_ms": rendered - k["t_start"] * 1000,
        "build_ms": (k["t_built"] - k["t_start"]) * 1000,
        "state_bytes": k["state"],
        "data_bytes": k["data"],
        "esm_bytes": k["esm"],
        "sent_points": k["sent"],
        "total_points": k["total"],
        "zoom_ms": t1 - t0,
        "zoom_reply_bytes": replied,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--points", type=int, default=525_600)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = LabServer(Path(tmp))
        server.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                runs = []
                for i in range(args.repeat):
                    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                    lab = Lab(ctx.new_page(), server)
                    runs.append(run_once(lab, i, args.points))
                    ctx.close()
                browser.close()
        finally:
            server.stop()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    raw = med["total_points"] * 8 * 4  # ts + value + lower + upper as float64
    print(f"AnomalyTimeline, {int(med['total_points']):,} points, {args.repeat} runs (median)")
    print(
        f"  cell execution -> chart painted : {med['render_ms']:.0f} ms "
        f"(runs: {', '.join(str(round(r['render_ms'])) for r in runs)})"
    )
    print(f"  of which widget construction    : {med['build_ms']:.0f} ms")
    print(
        f"  points sent / total             : {int(med['sent_points']):,} / "
        f"{int(med['total_points']):,}"
    )
    print(
        f"  initial state on the wire       : {med['state_bytes'] / 1024:.0f} KiB "
        f"(Arrow {med['data_bytes'] / 1024:.0f} KiB; raw float64 {raw / 2**20:.1f} MiB)"
        f" + JS bundle {med['esm_bytes'] / 1024:.0f} KiB once per widget"
    )
    print(
        f"  zoom to a tenth -> detail drawn : {med['zoom_ms']:.0f} ms, "
        f"reply {med['zoom_reply_bytes'] / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
