"""Device and dtype policy.

svdcore computes on CUDA when torch sees a GPU and on the CPU otherwise. The environment
variable ``SVDSCOPE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1`` ...) overrides the choice.
Results mean the same on every device; float32 is the default working precision and
float64 is available on request (``precision="float64"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch

from .exceptions import DataError, ExecutionError, SvdscopeError

__all__ = [
    "Precision",
    "available_memory",
    "check_memory",
    "default_device",
    "format_bytes",
    "resolve_dtype",
    "to_device",
]

Precision = Literal["float32", "float64"]

_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def default_device() -> torch.device:
    """The device svdcore computes on: ``SVDSCOPE_DEVICE`` if set, else cuda if available.

    Raises ``SvdscopeError`` when ``SVDSCOPE_DEVICE`` names a device torch cannot use.
    """
    requested = os.environ.get("SVDSCOPE_DEVICE", "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise SvdscopeError(
                f"SVDSCOPE_DEVICE={requested!r} is not a device torch understands; "
                "use 'cpu', 'cuda' or 'cuda:N'."
            ) from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SvdscopeError(
                f"SVDSCOPE_DEVICE={requested!r} asks for CUDA but torch sees no GPU; "
                "unset it or set it to 'cpu'."
            )
        return device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_dtype(precision: Precision | torch.dtype | None = None) -> torch.dtype:
    """Map ``"float32"``/``"float64"`` (or a torch float dtype, or None -> float32) to a dtype."""
    if precision is None:
        return torch.float32
    if isinstance(precision, torch.dtype):
        if precision not in (torch.float32, torch.float64):
            raise DataError(f"precision {precision} is not supported; use float32 or float64.")
        return precision
    try:
        return _DTYPES[precision]
    except KeyError:
        raise DataError(
            f"precision {precision!r} is not supported; use 'float32' or 'float64'."
        ) from None


def to_device(
    x: torch.Tensor, *, device: torch.device | str | None = None, precision=None
) -> torch.Tensor:
    """Move ``x`` to ``device`` (default: :func:`default_device`) as a float32/float64 tensor."""
    target = torch.device(device) if device is not None else default_device()
    return x.to(device=target, dtype=resolve_dtype(precision))


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps it at least 1: "3.2 GiB"."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _cgroup_headroom() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), None without a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def available_memory(device: torch.device | str | None = None) -> int:
    """Bytes of memory this process can still take: on a CUDA ``device`` the GPU's free
    memory (``torch.cuda.mem_get_info``); else host memory, the kernel's MemAvailable
    capped by the cgroup's headroom (a container's limit) when there is one."""
    if device is not None and torch.device(device).type == "cuda":
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    avail: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        avail = None
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    headroom = _cgroup_headroom()
    return avail if headroom is None else max(0, min(avail, headroom))


def check_memory(
    nbytes: float, *, what: str, hint: str = "", device: torch.device | str | None = None
) -> None:
    """Raise ``ExecutionError`` naming both sizes when ``nbytes`` exceed the memory this
    process can take on ``device`` (:func:`available_memory`), before anything is
    allocated."""
    free = available_memory(device)
    if nbytes > free:
        tail = f" {hint}" if hint else ""
        where = (
            "the GPU"
            if device is not None and torch.device(device).type == "cuda"
            else ("this machine")
        )
        raise ExecutionError(
            f"{what} needs about {format_bytes(nbytes)} of memory and {where} has "
            f"{format_bytes(free)} available.{tail}"
        )
