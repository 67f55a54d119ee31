"""A checkpoint's model card, written from what the checkpoint itself records.

`vdenoise train` and `vdenoise fit` store their whole configuration, phases, losses and
validation history in the checkpoint's metadata; the card renders them, so a released file and
its card cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vdenoise.checkpoint import read_metadata
from vdenoise.weights import file_sha256


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _loss(method: str, training: dict[str, Any]) -> str:
    if method == "stbn":
        return "loss: Gaussian negative log-likelihood through the blind spot"
    loss = f"stage-2 loss: {training.get('refiner_loss') or '?'}"
    power = (training.get("settings") or {}).get("sigma_power") or 0
    return f"{loss}, each window weighed by sigma^-{power:g}" if power else loss


def _eight_bit(settings: dict[str, Any]) -> str:
    share = settings.get("eight_bit_share") or 0
    return f", then rounded and clipped to 8 bits in {share:.0%} of clips" if share else ""


def render(path: Path, name: str | None = None, extra: str = "") -> str:
    """Markdown for the checkpoint at `path`; `extra` (e.g. bench tables) is appended."""
    meta = read_metadata(path)
    training: dict[str, Any] = meta["training"]
    settings: dict[str, Any] = training.get("settings", {})
    phases = training.get("phases", [])
    title = name or Path(path).name.removesuffix(".safetensors")
    lines = [
        f"# {title}",
        "",
        f"- method: {meta['method']}, preset {meta['preset']} (config: `{meta['config']}`)",
        f"- file: `{Path(path).name}`, sha256 `{file_sha256(path)}`",
        f"- vdenoise {meta.get('vdenoise_version', '?')}, checkpoint format "
        f"{meta['format_version']}",
    ]
    if training:
        kind = training.get("kind", "?")
        command = training.get("command", f"vdenoise {kind}")
        data = training.get("data") or training.get("clip")
        if isinstance(data, list):
            data = f"{len(data)} sequences: " + ", ".join(data)
        lines += [
            "",
            "## Training",
            "",
            f"- how: `{command}`, self-supervised (noisy frames only), from "
            f"{training.get('started_from', '?')}",
            f"- data: {data}",
            f"- noise added: {settings.get('noise', '?')}{_eight_bit(settings)}; "
            f"{_loss(meta['method'], training)}",
            f"- budget: {settings.get('minutes') or '-'} min / {settings.get('steps') or '-'} "
            f"steps; batch {settings.get('batch')}, crop {settings.get('crop')}, "
            f"lr {settings.get('lr')}, seed {settings.get('seed')}",
            "- phases: "
            + "; ".join(
                f"{p['name']} {p['steps']} steps in {_minutes(p['seconds'])}" for p in phases
            ),
            f"- device: {training.get('hardware') or training.get('device', '?')}, precision "
            f"{training.get('precision', '?')}",
            f"- total: {sum(p['steps'] for p in phases)} steps, "
            f"{_minutes(sum(p['seconds'] for p in phases))} of training",
        ]
        history = training.get("validation", [])
        if history:
            lines += ["", f"## Validation ({training.get('validation_noise', '?')})", ""]
            names = [k for k in history[-1] if k not in ("step", "psnr")]
            lines += ["| step | mean PSNR | " + " | ".join(names) + " |"]
            lines += ["|" + "---|" * (len(names) + 2)]
            for v in history:
                cells = [str(v["step"]), f"{v['psnr']:.2f}"] + [f"{v[n]:.2f}" for n in names]
                lines += ["| " + " | ".join(cells) + " |"]
    if extra:
        lines += ["", extra.rstrip()]
    return "\n".join(lines) + "\n"
