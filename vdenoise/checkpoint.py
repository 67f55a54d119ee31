"""Checkpoint files: writing them, checking them, and rebuilding their models.

A checkpoint is one `.safetensors` file whose metadata rebuilds its model (method, preset and
full config, training record, vdenoise version), so `--weights any.safetensors` just works; no
pickle is ever loaded. Nothing in a file is trusted before it is checked: the header's size, the
metadata against a schema (types, ranges), the tensors' names and shapes against the declared
architecture (built on the `meta` device, so nothing is allocated), and the sha256 of the tensor
data against the digest written into the metadata when the file was saved. A file saved before
that digest existed loads with a warning (`Checkpoint.unverified`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from vdenoise import models, weights
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.models.base import VideoDenoiser
from vdenoise.models.f2r import F2R

FORMAT = "vdenoise-checkpoint"
FORMAT_VERSION = "1"
DIGEST_KEY = "tensor_sha256"  # sha256 of every byte after the header
MAX_HEADER = 16 << 20  # bytes; ours are a few kilobytes
MAX_CONFIG_INT = 1024  # no preset comes near; an absurd value is refused before it is built


def _bad(path: Path, what: str) -> VdenoiseError:
    return VdenoiseError(
        f"{path.name} is not a usable vdenoise checkpoint ({what})",
        "pass a .safetensors file written by `vdenoise train` or `vdenoise fit`",
    )


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The safetensors header (tensor entries and `__metadata__`) and where the data starts."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
            if len(head) < 8:
                raise _bad(path, "too short")
            (length,) = struct.unpack("<Q", head)
            if length > min(MAX_HEADER, size - 8):
                if head.startswith(b"PK\x03\x04") or (head[0] == 0x80 and 2 <= head[1] <= 5):
                    raise VdenoiseError(  # torch.save's zip, or a bare pickle
                        f"{path.name} is a pickled PyTorch file, which vdenoise never loads "
                        "(unpickling can run code)",
                        "pass a .safetensors checkpoint",
                    )
                raise _bad(path, "not a safetensors file")
            header = json.loads(f.read(length))
    except OSError as e:
        raise VdenoiseError(f"cannot read {path} ({e.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _bad(path, "its header is not a JSON object")
    return header, 8 + length


def tensor_digest(path: Path, offset: int) -> str:
    """sha256 of the file's bytes from `offset` (the tensor data) to the end."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    model: VideoDenoiser, path: Path, training: dict[str, Any] | None = None
) -> str:
    """Write the model's weights, everything needed to rebuild it and the digest of its
    tensors, atomically; returns the file's sha256."""
    from vdenoise.version import __version__

    method, preset, config = models.describe(model)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "method": method,
        "preset": preset,
        "config": json.dumps(config),
        "training": json.dumps(training or {}),
        "vdenoise_version": __version__,
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        save_file(state, str(tmp), metadata=metadata)  # once for the digest of its data
        metadata[DIGEST_KEY] = tensor_digest(tmp, read_header(tmp)[1])
        save_file(state, str(tmp), metadata=metadata)  # the data is laid out the same
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return weights.file_sha256(path)


def read_metadata(path: Path) -> dict[str, Any]:
    """The checkpoint's metadata, checked against the schema, `config` and `training` decoded."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    header, _ = read_header(path)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise VdenoiseError(
            f"{path.name} is not a vdenoise checkpoint",
            "it lacks the metadata that says how to rebuild the model",
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise VdenoiseError(
            f"{path.name} has checkpoint format {meta.get('format_version')}, "
            f"this vdenoise reads {FORMAT_VERSION}"
        )
    meta = dict(meta)
    for key in ("config", "training"):
        try:
            meta[key] = json.loads(meta.get(key, "{}"))
        except json.JSONDecodeError:
            raise _bad(path, f"its {key} is not JSON") from None
        if not isinstance(meta[key], dict):
            raise _bad(path, f"its {key} is not a JSON object")
    problem = _schema_problem(meta)
    if problem:
        raise _bad(path, problem)
    return meta


def _schema_problem(meta: dict[str, Any]) -> str | None:
    """What in the decoded metadata is out of schema, or None."""
    method = meta.get("method")
    if method not in models.METHODS:
        return f"unknown method {method!r}"
    if not isinstance(meta.get("preset", ""), str):
        return "its preset is not a name"
    fields = {f.name: f.default for f in dataclasses.fields(models.ARCHITECTURES[method][1])}
    for key, value in meta["config"].items():
        if key not in fields:
            return f"unknown {method} setting {key!r}"
        kind = type(fields[key])
        if kind is bool and not isinstance(value, bool):
            return f"{key} is not true or false"
        if kind is int and (type(value) is not int or not 0 <= value <= MAX_CONFIG_INT):
            return f"{key} is not a whole number from 0 to {MAX_CONFIG_INT}"
        if kind is float and not _finite(value):
            return f"{key} is not a finite number"
    training = meta["training"]
    if not _finite(training.get("sigma", 0.0)) or not 0 <= (training.get("sigma") or 0) <= 255:
        return "its fitted noise level is not a number from 0 to 255"
    profile = training.get("noise_profile") or {}
    if not isinstance(profile, dict):
        return "its noise profile is not a JSON object"
    table = profile.get("relative_variance")
    if table is not None and (
        not isinstance(table, list)
        or not 0 < len(table) <= MAX_CONFIG_INT
        or not all(_finite(v) and v > 0 for v in table)
    ):
        return "its noise profile's variance table is not a list of positive numbers"
    return None


def _finite(value: object) -> bool:
    return value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )


def fitted_level(model: VideoDenoiser) -> float | None:
    """The noise level (0-255) a `vdenoise fit` checkpoint was adapted to, else None."""
    meta = getattr(model, "checkpoint", {}).get("metadata", {})
    training = meta.get("training", {})
    return training.get("sigma") if training.get("kind") == "fit" else None


def load_checkpoint(path: Path, expected_sha256: str | None = None) -> VideoDenoiser:
    """Rebuild a model from a checkpoint file, after checking everything in it (module
    docstring); a registered release is also checked against its sha256."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if not path.is_file():
        raise UsageError(f"{path} is not a checkpoint file (a folder, pipe or device)")
    if expected_sha256 is not None and weights.file_sha256(path) != expected_sha256:
        raise VdenoiseError(
            f"{path} does not match its registered sha256 (damaged or replaced)",
            "fetch it again with `vdenoise models download`",
        )
    meta = read_metadata(path)
    header, offset = read_header(path)
    recorded = meta.get(DIGEST_KEY)
    if recorded is not None and tensor_digest(path, offset) != recorded:
        raise VdenoiseError(
            f"{path} was altered after it was saved: its tensors do not match their digest",
            "use the file as `vdenoise train` or `fit` wrote it",
        )
    with torch.device("meta"):  # the declared architecture, without allocating it
        skeleton = models.build(meta["method"], config=meta["config"])
    expected = {k: list(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: v.get("shape") for k, v in header.items() if k != "__metadata__"}
    if found != expected:
        missing = sorted(set(expected) ^ set(found)) or [
            k for k in expected if expected[k] != found[k]
        ]
        raise VdenoiseError(
            f"{path.name} does not fit its declared architecture (first mismatch: {missing[0]})"
        )
    model = models.build(meta["method"], config=meta["config"])
    model.load_state_dict(load_file(str(path)), strict=True)
    model.checkpoint = {  # type: ignore[attr-defined]
        "path": str(path),
        "metadata": meta,
        "unverified": recorded is None and expected_sha256 is None,
    }
    profile = meta["training"].get("noise_profile") or {}
    if isinstance(model, F2R) and profile.get("relative_variance") is not None:
        model.relative_variance = torch.tensor(profile["relative_variance"])  # fitted: its NLF
    return model


def unverified_note(model: VideoDenoiser) -> str | None:
    """A warning for a checkpoint whose tensors could not be checked, else None."""
    record = getattr(model, "checkpoint", {})
    if not record.get("unverified"):
        return None
    return (
        f"warning: {Path(record['path']).name} was saved before checkpoints carried a digest, "
        "so its tensors cannot be checked"
    )


def load_model(
    method: str | None = None,
    choice: str | Path | None = None,
    offline: bool = False,
    device_type: str = "cpu",
) -> tuple[VideoDenoiser, str]:
    """The model to denoise with, and where its weights came from.

    `choice` is a checkpoint file or a release name; without it, the default release of
    `method` (F2R when none is named) for `device_type`. Resolution: the given file, the bundled
    folder, the Hugging Face cache, the Hub.
    """
    if method is not None and method not in models.METHODS:
        raise UsageError(f"unknown method {method!r}", f"choose from {', '.join(models.METHODS)}")
    if choice is not None:
        release = weights.find_release(str(choice))
        if release is None:
            model = load_checkpoint(Path(choice))
            _check_method(method, models.describe(model)[0], str(choice))
            return model, str(choice)
        _check_method(method, release.method, release.name)
    else:
        method = method or models.METHODS[0]
        release = weights.default_release(method, device_type)
        if release is None:
            raise VdenoiseError(
                f"no trained {method} weights have been released yet",
                "pass --weights FILE with a vdenoise checkpoint of your own",
            )
    path = weights.release_path(release, offline=offline)
    return load_checkpoint(path, release.sha256), f"{release.name} ({path})"


def _check_method(asked: str | None, method: str, source: str) -> None:
    if asked is not None and method != asked:
        raise UsageError(f"{source} holds {method} weights, not {asked}", "drop --method")
