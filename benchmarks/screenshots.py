"""Screenshots of every dashboard step and of the offline report, for the README.

Why from the real-browser tests: the pictures then show what the tests checked (a view that
renders wrong fails its test before it reaches the README). This runs the two tests that take
them, then copies their PNGs to docs/img/ shrunk to a palette PNG under 200 KB each.

    python benchmarks/screenshots.py            # runs the browser tests (a few minutes)
    python benchmarks/screenshots.py --no-run   # only re-copy the last run's screenshots
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "test-results" / "ui"
OUT = ROOT / "docs" / "img"
MAX_BYTES = 200_000

DASHBOARD_TEST = "test_demo_dashboard_steps_views_and_feature_click"
REPORT_TEST = "test_triage_report_renders_views_offline"
TESTS = [
    f"tests/ui/test_ui_demo.py::{DASHBOARD_TEST}",
    f"tests/ui/test_ui_report.py::{REPORT_TEST}",
]
#: a full-page screenshot is cut to its top this many pixels (the report is ~6000 px tall)
CROP = {"report.png": 1700}
#: docs/img name -> (test folder, glob of the screenshot it took)
SHOTS = {
    "dashboard.png": (DASHBOARD_TEST, "00-dashboard.png"),
    "step-topline.png": (DASHBOARD_TEST, "*-topline.png"),
    "step-models.png": (DASHBOARD_TEST, "*-models.png"),
    "step-snapshot.png": (DASHBOARD_TEST, "*-snapshot.png"),
    "step-features.png": (DASHBOARD_TEST, "*-features.png"),
    "step-lineage.png": (DASHBOARD_TEST, "*-lineage.png"),
    "step-hypotheses.png": (DASHBOARD_TEST, "*-hypotheses.png"),
    "step-verdict.png": (DASHBOARD_TEST, "*-verdict.png"),
    "report.png": (REPORT_TEST, "report.png"),
}


def shrink(src: Path, dst: Path, max_bytes: int = MAX_BYTES, crop: int | None = None) -> int:
    """Write ``src`` to ``dst`` as a palette PNG, narrowing it until it is under ``max_bytes``
    (after cutting it to its top ``crop`` pixels, when given)."""
    from PIL import Image

    img = Image.open(src).convert("RGB")
    if crop is not None and img.height > crop:
        img = img.crop((0, 0, img.width, crop))
    width = min(img.width, 1200)
    while True:
        h = max(1, round(img.height * width / img.width))
        small = img.resize((width, h), Image.LANCZOS) if width != img.width else img
        small.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
        size = dst.stat().st_size
        if size <= max_bytes or width <= 400:
            return size
        width = int(width * 0.85)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-run", action="store_true", help="reuse test-results/ui as it is")
    args = ap.parse_args(argv)
    if not args.no_run:
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", *TESTS]
        if subprocess.run(cmd, cwd=ROOT, check=False).returncode != 0:
            print("screenshots: the browser tests failed; nothing copied", file=sys.stderr)
            return 1
    OUT.mkdir(parents=True, exist_ok=True)
    missing = []
    for name, (test, pattern) in SHOTS.items():
        found = sorted((RESULTS / test).glob(pattern))
        if not found:
            missing.append(f"{test}/{pattern}")
            continue
        size = shrink(found[0], OUT / name, crop=CROP.get(name))
        print(f"{OUT / name}: {size / 1000:.0f} KB")
    if missing:
        print("screenshots: not taken by the tests: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
