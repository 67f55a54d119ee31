"""Which optical flow estimator a model uses, from VDENOISE_FLOW: `auto` (the default) DIS on
CPUs, where it is the faster, and the torch `PyramidFlow` on accelerators, where it runs
batched on the device beside the network and leaves the CPU to decoding and encoding; `dis`
DIS everywhere; `pyramid` PyramidFlow everywhere.

Since vdenoise 0.15.0 `auto` is the default: with DIS's variational refinement in it (0.14.0)
the released models' output with PyramidFlow is on average their output with DIS
(`benchmarks/stages.py --flow pyramid|dis`, 4 frames, 8-bit, sigma 10/30/50, 1x-3x motion:
f2r-small 0.15.0 35.25 / 30.04 / 26.55 against 35.24 / 30.04 / 26.55 dB, stbn-tiny 35.22 /
28.90 / 25.38 against 35.20 / 28.88 / 25.37; their cards, docs/training.md)."""

from __future__ import annotations

import os

from vdenoise.errors import UsageError
from vdenoise.models.flow import ByDevice, FlowEstimator
from vdenoise.models.pyramid_flow import PyramidFlow

FLOWS = ("auto", "dis", "pyramid")  # VDENOISE_FLOW's values


def chosen_flow(dis: FlowEstimator) -> FlowEstimator:
    """The estimator VDENOISE_FLOW asks for, given the model's DIS setting."""
    choice = os.environ.get("VDENOISE_FLOW", "auto").strip().lower() or "auto"
    if choice not in FLOWS:
        raise UsageError(f"VDENOISE_FLOW must be one of {', '.join(FLOWS)}, not {choice!r}")
    if choice == "dis":
        return dis
    if choice == "pyramid":
        return PyramidFlow()
    return ByDevice(dis, PyramidFlow())
