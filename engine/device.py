"""Device detection (CUDA, then MPS, then CPU) and the per-device training defaults."""

from __future__ import annotations

import os

import torch


OUT_OF_MEMORY_ADVICE = ("lower the batch size, the model width (model.options ngf/ndf) or the resolution, or close "
                        "other programs")


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


def detect_device(name: str = "auto") -> torch.device:
    """Resolve 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' to an available torch.device."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but no CUDA GPU is visible; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) are visible")
    if device.type == "mps" and not (torch.backends.mps.is_available()):
        raise DeviceError("device 'mps' requested but Apple MPS is not available; use --device cpu")
    return device


def device_summary(name: str = "auto") -> str:
    """A one-line description, e.g. 'NVIDIA H100 80GB HBM3 (79 GiB)' or 'CPU, 2 cores'."""
    device = detect_device(name)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        count = torch.cuda.device_count()
        extra = f", {count} GPUs visible" if count > 1 else ""
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB{extra})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU, {os.cpu_count()} cores"


def use_bf16(device: torch.device, precision: str) -> bool:
    """bf16 autocast is CUDA-only by default: on CPU it is an order of magnitude slower."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    return device.type == "cuda"


def configure_backends(device: torch.device, deterministic: bool = False) -> None:
    """TF32 and cuDNN autotuning on CUDA, denormals flushed to zero on CPU (tiny weights and Adam
    moments otherwise hit slow denormal arithmetic); with ``deterministic``, bit-exact kernels."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        return
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if device.type == "cpu":
        torch.set_flush_denormal(True)
