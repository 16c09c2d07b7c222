"""``torch.load`` restricted to tensors: the one place svdscope reads PyTorch pickles.

``weights_only=True`` refuses any pickled global (code, classes, modules) before it runs;
the refusal becomes a ``LoadError`` naming the global and what to save instead.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..exceptions import LoadError

__all__ = ["load_weights_only"]


def load_weights_only(path: Path, *, instead: str) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors a user can act on.

    ``instead`` completes the refusal sentence: what to save with torch.save instead.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None:
            raise LoadError(
                f"{path.name} is not a readable PyTorch file (corrupt, or not written by "
                "torch.save)."
            ) from exc
        raise LoadError(
            f"{path.name} contains Python objects other than tensors ({found.group(1)}: a "
            f"pickled model, class or code). svdscope never unpickles code: {instead}"
        ) from exc
    except Exception as exc:
        raise LoadError(
            f"{path.name} is not a readable PyTorch file ({type(exc).__name__}: {exc})."
        ) from exc
