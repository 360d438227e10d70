"""Run the benchmarks and print every figure as one JSON line.

    python -m benchmarks.run              # all benchmarks, full size
    python -m benchmarks.run --quick      # small sizes (what CI can afford)
    python -m benchmarks.run auth roms    # only bench_auth.py and bench_roms.py

Each ``benchmarks/bench_<name>.py`` exposes ``run(quick: bool) -> None`` and prints its figures
with ``benchmarks._util.emit``. Run them on a quiet machine: figures are wall-clock.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", help="benchmark names (bench_<name>.py); default all")
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    args = parser.parse_args()
    here = Path(__file__).parent
    available = sorted(
        m.name[len("bench_") :] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )
    selected = args.names or available
    unknown = set(selected) - set(available)
    if unknown:
        print(f"unknown benchmarks: {', '.join(sorted(unknown))}; have: {', '.join(available)}", file=sys.stderr)
        return 2
    for name in selected:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        start = time.perf_counter()
        print(f"# {name}", file=sys.stderr, flush=True)
        module.run(quick=args.quick)
        print(f"# {name} took {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
