"""Start-up time of `import hawknb` and the `hawknb` command, side by side with `python -c pass`.

Why: every CLI call and every notebook pays this before its first line of output, and the
goal is under 0.5 s on a quiet machine. Absolute times move with the machine's load, so each
case is also reported as a ratio to a bare interpreter measured in the same rounds
(interleaved, so a burst of load hits all cases alike).

    python benchmarks/startup.py [--runs 15] [--out benchmarks/results/startup.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import hawknb": ["-c", "import hawknb"],
    "import hawknb.widgets": ["-c", "import hawknb.widgets"],
    "hawknb --help": ["-m", "hawknb", "--help"],
    "hawknb new --help": ["-m", "hawknb", "new", "--help"],
    "hawknb triage --help": ["-m", "hawknb", "triage", "--help"],
    "hawknb new bogus (error)": ["-m", "hawknb", "new", "bogus"],
}


def _once(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - t0


def measure(runs: int) -> dict[str, float]:
    """Median wall seconds of each case over ``runs`` interleaved rounds (after one warm-up)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in CASES.values():  # warm the file cache and the .pyc files
        _once(args, env)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, args in CASES.items():
            times[name].append(_once(args, env))
    return {name: statistics.median(ts) for name, ts in times.items()}


def to_markdown(medians: dict[str, float], runs: int) -> str:
    base = medians["python -c pass"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Start-up time",
        "",
        f"Median of {runs} runs each, interleaved; Python {platform.python_version()} on "
        f"{os.cpu_count()} CPU(s), 1-minute load average {load:.2f} when it finished. "
        "Written by `python benchmarks/startup.py`.",
        "",
        "| case | median (s) | over `python -c pass` (s) | ratio to `python -c pass` |",
        "|---|---:|---:|---:|",
    ]
    for name, t in medians.items():
        lines.append(f"| `{name}` | {t:.3f} | {t - base:+.3f} | {t / base:.1f}x |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "startup.md"))
    args = ap.parse_args(argv)
    md = to_markdown(measure(args.runs), args.runs)
    Path(args.out).write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
