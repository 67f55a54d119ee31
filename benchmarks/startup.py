"""Start-up: how long the light commands take, against the interpreter and `import torch`.

Each command runs as users run it (the installed console script), several times in turn; the
median wall time is reported, with its ratio to `python -c "import torch"`, the floor every
command paid while the CLI imported torch at start (< 1: faster than that floor).

    python benchmarks/startup.py [--runs 7]

Figures: docs/performance.md, "The pipeline" (start-up).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine

COMMAND = str(Path(sys.executable).with_name("vdenoise"))
CLIP = Path(__file__).resolve().parents[1] / "examples" / "box-noisy.mp4"
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "vdenoise --help": [COMMAND, "--help"],
    "vdenoise --version": [COMMAND, "--version"],
    "vdenoise models list": [COMMAND, "models", "list"],
    "vdenoise probe CLIP": [COMMAND, "probe", str(CLIP)],
    "vdenoise denoise --help": [COMMAND, "denoise", "--help"],
}


def wall(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):  # interleaved, so a busy moment hits every case alike
        for name, command in CASES.items():
            times[name].append(wall(command))
    torch_floor = statistics.median(times["python -c 'import torch'"])
    print(f"# start-up, median of {args.runs} runs; {machine()}")
    print("| command | seconds | / import torch |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.3f} | {median / torch_floor:.2f} |")


if __name__ == "__main__":
    main()
