"""python -m benchmarks.indepgen OUT --kind K --seed S [--difficulty D] [--knob name=value ...]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .generate import generate
from .knobs import DIFFICULTIES, KINDS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.indepgen",
        description="Write OUT/workspace (the contract of docs/workspace.md) and OUT/truth.json.",
    )
    ap.add_argument("out", type=Path)
    ap.add_argument("--kind", choices=KINDS, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--difficulty", choices=DIFFICULTIES, default="medium")
    ap.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one knob (repeatable), e.g. --knob drop=0.04",
    )
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.knob:
        if "=" not in item:
            ap.error(f"--knob {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        overrides[k.strip()] = v.strip()
    try:
        truth = generate(
            args.out / "workspace",
            args.out / "truth.json",
            args.kind,
            args.seed,
            args.difficulty,
            **overrides,
        )
    except (ValueError, FileExistsError) as exc:
        print(f"indepgen: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.out / 'workspace'}: {args.kind} ({args.difficulty}, seed {args.seed}); "
        f"model {truth['model']}, onset {truth['onset']}; truth in {args.out / 'truth.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
