"""Denoising models behind one interface (`VideoDenoiser`), built by method name and preset."""

from __future__ import annotations

import dataclasses
from typing import Any

from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.models import f2r, stbn
from vdenoise.models.base import VideoDenoiser

# method -> (model class, config class, named presets)
ARCHITECTURES: dict[str, tuple[type[VideoDenoiser], type, dict[str, Any]]] = {
    "f2r": (f2r.F2R, f2r.F2RConfig, f2r.PRESETS),
    "stbn": (stbn.STBN, stbn.STBNConfig, stbn.PRESETS),
}
# method -> settings of options that older checkpoints predate (absent from their config)
LEGACY: dict[str, dict[str, Any]] = {"f2r": f2r.LEGACY}
METHODS = tuple(ARCHITECTURES)


def build(
    method: str, preset: str | None = None, config: dict[str, Any] | None = None
) -> VideoDenoiser:
    """A model of `method` with a named preset's architecture, or with an explicit config."""
    if method not in ARCHITECTURES:
        raise UsageError(f"unknown method {method!r}", f"choose from {', '.join(METHODS)}")
    model_class, config_class, presets = ARCHITECTURES[method]
    if config is not None:
        try:
            return model_class(config_class(**{**LEGACY.get(method, {}), **config}))
        except TypeError as e:
            raise VdenoiseError(f"this {method} configuration is not understood ({e})") from None
    preset = preset or next(iter(presets))
    if preset not in presets:
        raise UsageError(f"unknown {method} preset {preset!r}", f"choose from {', '.join(presets)}")
    return model_class(presets[preset])


def describe(model: VideoDenoiser) -> tuple[str, str, dict[str, Any]]:
    """(method, preset name or 'custom', config as a dict) of a model built by `build`."""
    for method, (model_class, _, presets) in ARCHITECTURES.items():
        if isinstance(model, model_class):
            config = model.config
            preset = next((name for name, c in presets.items() if c == config), "custom")
            return method, preset, dataclasses.asdict(config)
    raise TypeError(f"{type(model).__name__} is not a vdenoise method")


__all__ = ["ARCHITECTURES", "METHODS", "VideoDenoiser", "build", "describe"]
