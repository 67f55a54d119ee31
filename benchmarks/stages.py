"""F2R's stages measured apart: PSNR of the noisy frames, the anchor (stage 1 alone), the
posterior mean stage 2 starts from, and the output, per sequence, sigma and protocol.

Protocols: `awgn`, the papers' (Gaussian noise, not clipped), and `8bit`, what users' files
hold (the same noise, then rounded and clipped). Noise is seeded as `vdenoise bench` seeds it.

    python benchmarks/stages.py --weights W [--weights W2 ...] [--frames 25]
        [--sigmas 10,20,30,40,50] [--protocols awgn,8bit] [VAL]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

from vdenoise.models.f2r import F2R
from vdenoise.noise import NoiseModel
from vdenoise.training.data import find_sequences, read_sequence
from vdenoise.training.evaluate import corrupt, stage_psnr
from vdenoise.weights import load_checkpoint

COLUMNS = ("noisy", "anchor", "posterior", "output")


def main() -> None:
    val = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "val"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val", nargs="?", type=Path, default=val)
    parser.add_argument("--weights", type=Path, action="append", required=True)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--sigmas", default="10,20,30,40,50")
    parser.add_argument("--protocols", default="awgn,8bit")
    args = parser.parse_args()
    sequences = [(p.stem, read_sequence(p, args.frames)) for p in find_sequences(args.val)]
    print(f"# {machine()}; {args.frames} frames of {', '.join(n for n, _ in sequences)}")
    for weights in args.weights:
        model = load_checkpoint(weights).eval()
        if not isinstance(model, F2R):
            raise SystemExit(f"{weights}: not an F2R checkpoint")
        print(f"\n## {weights.name}\n")
        print("| protocol | sigma | sequence | " + " | ".join(COLUMNS) + " |")
        print("|---|---|---|" + "---|" * len(COLUMNS))
        began = time.perf_counter()
        for protocol in args.protocols.split(","):
            for sigma in (float(s) for s in args.sigmas.split(",")):
                rows = []
                for name, frames in sequences:
                    clean = frames.float() / 255
                    noisy, level = corrupt(
                        clean, NoiseModel.parse(f"gaussian:{sigma:g}"), 0, protocol == "8bit"
                    )
                    rows.append(stage_psnr(model, noisy, level, clean))
                    cells = " | ".join(f"{rows[-1].get(c, float('nan')):.2f}" for c in COLUMNS)
                    print(f"| {protocol} | {sigma:g} | {name} | {cells} |", flush=True)
                mean = {c: sum(r.get(c, float("nan")) for r in rows) / len(rows) for c in COLUMNS}
                cells = " | ".join(f"**{mean[c]:.2f}**" for c in COLUMNS)
                print(f"| {protocol} | {sigma:g} | mean | {cells} |", flush=True)
        print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
