"""``torch.load`` restricted to tensors: where svdscope reads PyTorch pickles (the only
other call is `_archives.check_export_archive`, which vets a .pt2's sample inputs the same
way).

``weights_only=True`` refuses any pickled global (code, classes, modules) before it runs;
the refusal becomes a ``LoadError`` naming the global and what to save instead. Zip
archives must be as torch.save writes them (uncompressed entries, no larger than the file),
so a compressed zip bomb is refused before torch unpacks it.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..exceptions import LoadError
from ._archives import check_torch_zip

__all__ = ["load_weights_only"]


def load_weights_only(path: Path, *, instead: str) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors a user can act on.

    ``instead`` completes the refusal sentence: what to save with torch.save instead.
    """
    check_torch_zip(path, path.name)  # no compressed (zip bomb) or duplicate entries
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError as exc:
        raise LoadError(
            f"{path.name} asks for more memory than this machine has (its tensors declare "
            "sizes far beyond the file); it is corrupt or hostile."
        ) from exc
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        name = found.group(1) if found else _first_global(path)
        if name is None:
            raise LoadError(
                f"{path.name} is not a readable PyTorch file (corrupt, or not written by "
                "torch.save)."
            ) from exc
        raise LoadError(
            f"{path.name} contains Python objects other than tensors ({name}: a "
            f"pickled model, class or code). svdscope never unpickles code: {instead}"
        ) from exc
    except Exception as exc:
        raise LoadError(
            f"{path.name} is not a readable PyTorch file ({type(exc).__name__}: {exc})."
        ) from exc


_SAFE_MODULES = ("torch", "collections", "builtins", "_codecs", "numpy")


def _first_global(path: Path, *, max_bytes: int = 64 << 20) -> str | None:
    """The first non-tensor global a bare pickle file names (parsed with pickletools, which
    runs nothing), for the refusal message; None when there is none or it is no pickle."""
    import pickletools

    try:
        if path.stat().st_size > max_bytes:
            return None
        with path.open("rb") as f:
            strings: list[str] = []
            for opcode, arg, _pos in pickletools.genops(f):
                if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                    strings.append(str(arg))
                elif opcode.name == "GLOBAL":
                    name = str(arg).replace(" ", ".")
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    name = f"{strings[-2]}.{strings[-1]}"
                else:
                    continue
                if opcode.name in ("GLOBAL", "STACK_GLOBAL") and not name.startswith(_SAFE_MODULES):
                    return name
    except Exception:  # not a pickle, or a broken one: no name to give
        return None
    return None
