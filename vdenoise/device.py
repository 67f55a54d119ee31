"""Choosing the compute device and precision, and knowing how much memory is free there."""

from __future__ import annotations

import os

import torch

from vdenoise.errors import UsageError, VdenoiseError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(spec: str = "auto") -> torch.device:
    """`auto` takes CUDA, then Apple's MPS, then the CPU; otherwise the named device."""
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"unknown device '{spec}'", "use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise VdenoiseError(
                "no CUDA GPU is available", "use --device cpu, or install a CUDA build of torch"
            )
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise VdenoiseError(f"there is no GPU cuda:{index} ({torch.cuda.device_count()} found)")
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise VdenoiseError("Apple's MPS backend is not available", "use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unsupported device '{spec}'", "use auto, cpu, cuda, cuda:N or mps")
    return device


def select_precision(spec: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on GPUs that have it, else fp16 on GPUs; fp32 on the CPU."""
    spec = spec.strip().lower()
    if spec == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    if spec not in PRECISIONS:
        raise UsageError(f"unknown precision '{spec}'", "use auto, fp32, bf16 or fp16")
    return PRECISIONS[spec]


def precision_name(dtype: torch.dtype) -> str:
    return next(name for name, d in PRECISIONS.items() if d == dtype)


def describe(device: torch.device) -> str:
    """A human name: 'cuda:0 (NVIDIA H200)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def free_memory(device: torch.device) -> int:
    """Bytes the process could still allocate on the device (host RAM for CPU and MPS)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30  # no way to ask (macOS): assume a modest 4 GiB


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an exception is an allocation failure on any device."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "out of memory" in text or "not enough memory" in text or "can't allocate memory" in text
    )
