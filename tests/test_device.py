import pytest
import torch

from vdenoise.device import (
    describe,
    free_memory,
    is_out_of_memory,
    select_device,
    select_precision,
)
from vdenoise.errors import UsageError, VdenoiseError


def test_cpu_and_auto():
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert select_device("auto").type == expected
    assert describe(torch.device("cpu")).startswith("cpu (")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_gpu_is_a_clear_error():
    with pytest.raises(VdenoiseError, match="no CUDA GPU"):
        select_device("cuda:0")


def test_nonsense_device_is_a_usage_error():
    with pytest.raises(UsageError):
        select_device("tpu")
    with pytest.raises(UsageError):
        select_device("cuda:x")


def test_precision():
    cpu = torch.device("cpu")
    assert select_precision("auto", cpu) == torch.float32
    assert select_precision("bf16", cpu) == torch.bfloat16
    with pytest.raises(UsageError):
        select_precision("fp8", cpu)


def test_free_memory_is_plausible():
    assert free_memory(torch.device("cpu")) > 64 << 20


def test_out_of_memory_is_recognised():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
