"""Give an F2R checkpoint the current stage 2: keep its trained anchor (stage 1, frozen), and
train a new refiner that starts from the posterior mean of anchor and frame, on clean footage
with synthetic noise, through the trainer of `vdenoise train` (stage 2 only). With
`--keep-refiner` its refiner is trained on instead (with `--refiner-width`, grown to that
width first, its output unchanged: `UNet.load_grown`); with `--joint S`, the last share S of the
budget fine-tunes both stages with stage 2's loss (stage 1 stays blind to the centre frame).
With `--fallback-posterior` stage 2 also reads the posterior given the fallen-back anchor and
mixes its output with it by a gate (`F2RConfig.fallback_posterior`; grown from a stage 2
without one, the gate starts at `GATE_START` everywhere).

    python scripts/retrain_refiner.py weights/f2r-small.safetensors -o f2r-small-v2.safetensors \
        --data ../shared/data/trainpack [--minutes 40] [--noise gaussian:5-55] \
        [--refiner-width 24] [--keep-refiner] [--joint 0.5] [--fallback-posterior]
        [--all-flows] [--resume]
        [--device cuda]

With VDENOISE_FLOW=auto and `--all-flows`, stage 1's flows come from DIS and the torch
PyramidFlow in turn (the two a model meets on CPUs and GPUs); `--spatial-fallback` gives the
model F2R's spatial fallback (`vdenoise/models/fallback.py`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vdenoise  # noqa: F401, I001  (threading defaults before torch)

import torch

from vdenoise.models.f2r import F2R, GATE_START
from vdenoise.noise import NoiseModel
from vdenoise.progress import TrainingProgress
from vdenoise.training.data import ClipSampler, find_sequences, motion_sequences, read_sequence
from vdenoise.training.evaluate import validate
from vdenoise.training.run import default_val_noise
from vdenoise.training.trainer import Trainer, TrainSettings, clip_size
from vdenoise.checkpoint import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="holds train/ and val/")
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--noise", default="gaussian:5-55")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--refiner-width", type=int, help="default: the start's")
    parser.add_argument(
        "--keep-refiner", action="store_true", help="train the start's on (grown to the width)"
    )
    parser.add_argument("--joint", type=float, default=0.0, help="share for both stages")
    parser.add_argument("--anchor", type=float, default=0.0, help="share for stage 1 first")
    parser.add_argument("--centre-view", type=int, help="give stage 1 a blind centre view")
    parser.add_argument(
        "--spatial-fallback", action="store_true", help="the anchor falls back where flow fails"
    )
    parser.add_argument(
        "--fallback-posterior", action="store_true", help="a gate to the posterior given it"
    )
    parser.add_argument(
        "--anchor-new-only", action="store_true", help="the anchor phase trains new modules only"
    )
    parser.add_argument("--resume", action="store_true", help="continue OUTPUT's run")
    parser.add_argument("--frame-steps", default="1", help="of the clips, e.g. 1,2,3,4")
    parser.add_argument("--flow-cache", action="store_true", help="flows computed once, cached")
    parser.add_argument(
        "--noisy-flows", action="store_true", help="the cached flows from noisy frames"
    )
    parser.add_argument(
        "--all-flows", action="store_true", help="flows of every estimator the model may meet"
    )
    parser.add_argument(
        "--sigma-power", type=float, default=0.0, help="SURE per window weighs sigma^-P"
    )
    parser.add_argument(
        "--gate-rate", type=float, default=1.0, help="the gate learns at this times the rate"
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    start = load_checkpoint(args.start)
    if not isinstance(start, F2R) or not start.config.uncertainty:
        sys.exit("error: an F2R checkpoint with the anchor's uncertainty is needed")
    width = args.refiner_width or start.config.refiner_width
    view = start.config.centre_view if args.centre_view is None else args.centre_view
    config = replace(
        start.config, posterior=True, highpass=False, refiner_width=width, centre_view=view,
        spatial_fallback=args.spatial_fallback or start.config.spatial_fallback,
        fallback_posterior=args.fallback_posterior or start.config.fallback_posterior,
    )  # fmt: skip
    if config.fallback_posterior and not config.spatial_fallback:
        sys.exit("error: --fallback-posterior needs the spatial fallback (--spatial-fallback)")
    model = F2R(config)
    missing, unexpected = model.estimator.load_state_dict(
        start.estimator.state_dict(), strict=False
    )
    if unexpected or any(not k.startswith(("centre_view.", "gate.")) for k in missing):
        sys.exit(f"error: stage 1 does not fit the start's: {missing + unexpected}")
    if args.keep_refiner:  # new inputs (`--spatial-fallback`) and channels start silent
        model.refiner.net.load_grown(start.refiner.net.state_dict())
        if model.refiner.gated and not start.refiner.gated:
            model.refiner.set_gate(GATE_START)
    device = torch.device(args.device)
    sources = find_sequences(args.data / "train")
    held_out = motion_sequences(find_sequences(args.data / "val"), 10)  # 1x, 2x, 3x motion
    val_noise = NoiseModel.parse(default_val_noise(args.noise))
    settings = TrainSettings(
        minutes=args.minutes, batch=args.batch, crop=args.crop, lr=args.lr, noise=args.noise,
        anchor_share=args.anchor, joint_share=args.joint, flow_cache=args.flow_cache,
        noisy_flows=args.noisy_flows, all_flows=args.all_flows, sigma_power=args.sigma_power,
        gate_rate=args.gate_rate,
        frame_steps=tuple(int(s) for s in args.frame_steps.split(",")),
        anchor_only=("centre_view.", "gate.") if args.anchor_new_only else (),
    )  # fmt: skip
    sampler = ClipSampler(
        [read_sequence(p).to(device) for p in sources],
        2 * model.config.neighbours + 1,
        clip_size(settings),
        steps=settings.frame_steps,
    )
    describe = {
        "kind": "train",
        "command": "scripts/retrain_refiner.py",
        "data": [p.name for p in sources],
        "started_from": f"{args.start.name}: its anchor"
        + (" and refiner" if args.keep_refiner else "; a new refiner on its posterior"),
        "validation_noise": str(val_noise),
        "validation_data": [name for name, _ in held_out],
    }
    trainer = Trainer(
        model, sampler, settings, args.output, device, describe,
        lambda m: validate(m, held_out, val_noise, device), validate_seconds=600,
    )  # fmt: skip
    if args.resume:
        trainer.resume()
    trainer.run(TrainingProgress())


if __name__ == "__main__":
    main()
