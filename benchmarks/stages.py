"""A model's stages measured apart, per sequence, sigma and protocol: PSNR of the noisy frames,
the first stage (F2R's anchor, from the neighbours alone; STBN's blind mean, before the
posterior), the posterior mean (F2R's stage 2 starts from it) and the output. `--alone` adds
STBN's blind mean with propagation off (each frame on its own, the same weights),
`--unchecked` with every flow trusted (`stbn.checked_flows` off); `--no-fall-back` measures
STBN without its spatial fallback (`STBN.fall_back`). `--motion 1,2,3` also measures the
sequences with every second and third frame kept (2x and 3x the motion): the fast-motion
validation.

Protocols: `awgn`, the papers' (Gaussian noise, not clipped), and `8bit`, what users' files
hold (the same noise, then rounded and clipped). Noise is seeded as `vdenoise bench` seeds it.

    python benchmarks/stages.py --weights W [--weights W2 ...] [--frames 25]
        [--sigmas 10,20,30,40,50] [--protocols awgn,8bit] [--motion 1,2,3] [--alone]
        [--unchecked] [--no-fall-back] [VAL]

Figures: the stage tables of weights/README.md; docs/methods.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

from vdenoise.models.f2r import F2R, dis_flow
from vdenoise.models.flow import PairCache
from vdenoise.models.pyramid_flow import PyramidFlow
from vdenoise.models.stbn import STBN
from vdenoise.noise import NoiseModel
from vdenoise.training.data import find_sequences, motion_sequences
from vdenoise.training.evaluate import corrupt, stage_psnr
from vdenoise.checkpoint import load_checkpoint

FIRST = {F2R: "anchor", STBN: "blind mean"}
FLOWS = {
    "dis": dis_flow,
    "pyramid": PyramidFlow,
}


def main() -> None:
    val = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "val"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val", nargs="?", type=Path, default=val)
    parser.add_argument("--weights", type=Path, action="append", required=True)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--sigmas", default="10,20,30,40,50")
    parser.add_argument("--protocols", default="awgn,8bit")
    parser.add_argument("--motion", default="1", help="frame steps: 1,2,3 = 1x, 2x, 3x motion")
    parser.add_argument("--alone", action="store_true", help="STBN: also without propagation")
    parser.add_argument(
        "--unchecked", action="store_true", help="STBN: also with every flow trusted"
    )
    parser.add_argument(
        "--no-fall-back", action="store_true", help="STBN: the blind mean without its fallback"
    )
    parser.add_argument(
        "--flow",
        choices=["model", "dis", "pyramid"],
        default="model",
        help="the model's own flow estimator, or DIS (F2R's setting) or the torch PyramidFlow",
    )
    args = parser.parse_args()
    steps = tuple(int(m) for m in args.motion.split(","))
    sequences = motion_sequences(find_sequences(args.val), args.frames, steps)
    print(f"# {machine()}; {args.frames} frames of {', '.join(n for n, _ in sequences)}")
    for weights in args.weights:
        model = load_checkpoint(weights).eval()
        if not isinstance(model, F2R | STBN):
            raise SystemExit(f"{weights}: neither an F2R nor an STBN checkpoint")
        if args.flow != "model":
            model.flow = PairCache(FLOWS[args.flow]())
        if isinstance(model, STBN):
            model.fall_back = not args.no_fall_back
        alone = args.alone and isinstance(model, STBN)
        unchecked = args.unchecked and isinstance(model, STBN)
        columns = ["noisy", "first", "posterior", "output"]
        columns += (["alone"] if alone else []) + (["unchecked"] if unchecked else [])
        names = [FIRST[type(model)] if c == "first" else c for c in columns]
        extra = {"alone": "blind mean, alone", "unchecked": "blind mean, flow unchecked"}
        names = [extra.get(c, c) for c in names]
        print(f"\n## {weights.name}, flow: {args.flow}\n")
        print("| protocol | sigma | sequence | " + " | ".join(names) + " |")
        print("|---|---|---|" + "---|" * len(columns))
        began = time.perf_counter()
        for protocol in args.protocols.split(","):
            for sigma in (float(s) for s in args.sigmas.split(",")):
                rows = []
                for name, frames in sequences:
                    clean = frames.float() / 255
                    noisy, level = corrupt(
                        clean, NoiseModel.parse(f"gaussian:{sigma:g}"), 0, protocol == "8bit"
                    )
                    row = stage_psnr(model, noisy, level, clean)
                    if alone:
                        model.propagate = False
                        row["alone"] = stage_psnr(model, noisy, level, clean)["first"]
                        model.propagate = True
                    if unchecked:
                        model.check_flows = False
                        row["unchecked"] = stage_psnr(model, noisy, level, clean)["first"]
                        model.check_flows = True
                    rows.append(row)
                    cells = " | ".join(f"{row.get(c, float('nan')):.2f}" for c in columns)
                    print(f"| {protocol} | {sigma:g} | {name} | {cells} |", flush=True)
                mean = {c: sum(r.get(c, float("nan")) for r in rows) / len(rows) for c in columns}
                cells = " | ".join(f"**{mean[c]:.2f}**" for c in columns)
                print(f"| {protocol} | {sigma:g} | mean | {cells} |", flush=True)
        print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
