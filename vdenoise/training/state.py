"""Resume files: everything a stopped run needs to continue, as safetensors (no pickle).

Tensors: the model's and the local view's weights, the optimiser's moments, the noise
generator; metadata: the phases reached, the data sampler's random state, the report so far.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vdenoise.errors import UsageError, VdenoiseError

FORMAT = "vdenoise-resume"


class Resumable(Protocol):
    """What a resume file holds of a run (`trainer.Trainer`, which imports this module)."""

    model: torch.nn.Module
    local: torch.nn.Module | None
    optimizer: torch.optim.Optimizer | None
    generator: torch.Generator
    phases: list[Any]  # trainer.Phase: name, share, steps, seconds
    phase_index: int
    sampler: Any  # its `rng` is a random.Random
    report: Any  # trainer.TrainReport: losses, validation

    def _new_optimizer(self, phase: Any) -> torch.optim.Optimizer: ...


def save_resume(trainer: Resumable, path: Path) -> None:
    tensors = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    if trainer.local is not None:
        tensors.update({f"local.{k}": v for k, v in trainer.local.state_dict().items()})
    groups: list[dict[str, Any]] = []
    if trainer.optimizer is not None:
        state = trainer.optimizer.state_dict()
        for index, moments in state["state"].items():
            tensors.update({f"optim.{index}.{k}": v for k, v in moments.items()})
        groups = [{k: v for k, v in g.items() if k != "params"} for g in state["param_groups"]]
    tensors["generator"] = trainer.generator.get_state()
    metadata = {
        "format": FORMAT,
        "phases": json.dumps([(p.name, p.share, p.steps, p.seconds) for p in trainer.phases]),
        "phase_index": str(trainer.phase_index),
        "optimizer_groups": json.dumps(groups),
        "sampler": json.dumps(trainer.sampler.rng.getstate()),
        "report": json.dumps(
            {"losses": trainer.report.losses, "validation": trainer.report.validation}
        ),
    }
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    tmp = path.with_name(f".{path.name}.part")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def load_resume(trainer: Resumable, path: Path) -> None:
    if not path.is_file():
        raise UsageError(f"nothing to resume: {path.name} does not exist")
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if meta.get("format") != FORMAT:
        raise VdenoiseError(f"{path.name} is not a vdenoise resume file")
    tensors = load_file(str(path))
    phases = json.loads(meta["phases"])
    if [p[0] for p in phases] != [p.name for p in trainer.phases]:
        raise UsageError(
            f"{path.name} comes from a run with other phases ({', '.join(p[0] for p in phases)})",
            "resume with the same method and refiner loss",
        )

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    trainer.model.load_state_dict(part("model."))
    if trainer.local is not None:
        trainer.local.load_state_dict(part("local."))
    for phase, (_, _, steps, seconds) in zip(trainer.phases, phases, strict=True):
        phase.steps, phase.seconds = steps, seconds
    trainer.phase_index = int(meta["phase_index"])
    report = json.loads(meta["report"])
    trainer.report.losses, trainer.report.validation = report["losses"], report["validation"]
    trainer.generator.set_state(tensors["generator"])
    state = json.loads(meta["sampler"])
    trainer.sampler.rng.setstate((state[0], tuple(state[1]), state[2]))
    groups = json.loads(meta["optimizer_groups"])
    if trainer.phase_index < len(trainer.phases) and groups:
        phase = trainer.phases[trainer.phase_index]
        trainer.optimizer = trainer._new_optimizer(phase)
        moments: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in part("optim.").items():
            index, name = key.split(".", 1)
            moments.setdefault(int(index), {})[name] = value
        params = list(range(len(trainer.optimizer.param_groups[0]["params"])))
        trainer.optimizer.load_state_dict(
            {"state": moments, "param_groups": [{**groups[0], "params": params}]}
        )
