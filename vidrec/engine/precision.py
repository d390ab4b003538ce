"""How the model computes: precision (bf16 autocast needs no scaler; fp16 needs a
GradScaler), the CPU bf16 training workaround (oneDNN convolutions off), and
memory layout (channels_last_3d where it was measured faster)."""
from __future__ import annotations

import contextlib

import torch

from ..utils.device import MEMORY_FORMATS, check_memory_format, memory_format  # noqa: F401  (engine API)

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(mode: str) -> str:
    mode = (mode or "fp32").lower()
    if mode not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"TRAIN.MIXED_PRECISION must be fp32, bf16 or fp16, got {mode!r}")
    return mode


def autocast(mode: str, device: torch.device):
    mode = check_precision(mode)
    if mode == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[mode])


def cpu_bf16_workaround(mode: str, device: torch.device) -> bool:
    """Whether training runs with oneDNN off: CPU bf16 only (never CUDA, fp32 or fp16).

    torch 2.13's oneDNN bf16 Conv3d weight gradient is intermittently NaN on
    some CPUs with native bf16 (AVX512_BF16): 2-20 of 20 seeds for a single
    Conv3d, varying run to run and with the thread count; 0 of 20 with oneDNN
    off. A start-up probe could miss it, so CPU bf16 training never calls
    oneDNN: convolutions then run torch's native kernels, which are the ones
    bf16 convolutions use anyway on CPUs without native bf16 (there oneDNN
    takes no bf16 convolutions, so this costs nothing; ``benchmarks/cpu_bf16.py``).
    Inference keeps oneDNN (only the weight gradient is affected).
    """
    return check_precision(mode) == "bf16" and device.type == "cpu"


@contextlib.contextmanager
def mkldnn_disabled(disable: bool = True):
    """oneDNN (MKL-DNN) off inside the block, restored after; a no-op when ``disable`` is false.

    Only the enabled flag is touched (``torch.backends.mkldnn.flags`` also resets
    the deterministic and TF32 settings and warns about TF32). The flag is
    process-wide, so it covers the backward pass run inside the block too.
    """
    if not disable:
        yield
        return
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def training_kernels(mode: str, device: torch.device):
    """The context a training micro-step (forward and backward) runs in: oneDNN off for CPU bf16."""
    return mkldnn_disabled(cpu_bf16_workaround(mode, device))


def cpu_bf16_note() -> str:
    """The one log line saying that the CPU bf16 workaround applies, and what it costs here."""
    try:  # a private op: a log line must not stop training if a torch build lacks it
        native = torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = True  # unknown: the cautious wording
    if native:
        cost = ("this CPU has native bf16, so its bf16 convolutions run torch's native kernels instead of oneDNN's "
                "(slower; `python benchmarks/cpu_bf16.py` measures it): TRAIN.MIXED_PRECISION fp32 may be faster")
    else:
        cost = ("no cost on this CPU (without native bf16 oneDNN runs no bf16 convolutions), but bf16 trains "
                "several times slower than fp32 here (8-9x measured on an AVX2 CPU): TRAIN.MIXED_PRECISION fp32 "
                "is faster")
    return ("CPU bf16 training: oneDNN off in forward/backward (torch 2.13's oneDNN bf16 Conv3d weight gradients "
            f"can be NaN on CPUs with AVX512_BF16); {cost}")


def make_scaler(mode: str, device: torch.device):
    """A GradScaler for fp16, else None."""
    if check_precision(mode) != "fp16":
        return None
    return torch.amp.GradScaler(device.type)
