"""Model references: the one rule for "a zoo name or a file path".

A reference is what a user types (the CLI's MODEL arguments, `svdscope.show`, the page's
configured models): a path to a model file or folder, or the name of an example network.
**An existing path wins**: a file or folder called like a zoo network opens as that file;
otherwise a zoo name opens the example network; anything else raises `LoadError` with a
sentence naming both options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import zoo
from .exceptions import LoadError
from .io import load_model
from .network import Network

__all__ = ["ModelRef", "model_ref", "open_model_ref"]


@dataclass(frozen=True)
class ModelRef:
    """A resolved reference: ``kind`` "zoo" (``name`` is the zoo name, ``path`` None) or
    "file" (``path`` is the resolved file or folder, ``name`` its file name)."""

    kind: Literal["zoo", "file"]
    name: str
    path: Path | None = None

    @property
    def spec(self) -> str:
        """The reference in resolved form: the zoo name, or the absolute path."""
        return self.name if self.kind == "zoo" else str(self.path)


def model_ref(ref: str | Path) -> ModelRef:
    """Resolve `ref` (see the module docstring). Invariant: ``kind == "file"`` exactly when
    ``Path(ref).expanduser()`` exists."""
    path = Path(ref).expanduser()
    if path.exists():
        resolved = path.resolve()
        return ModelRef("file", resolved.name, resolved)
    try:
        names = list(zoo.names())
    except Exception:  # an unreadable zoo must not hide the real problem (a wrong path)
        names = []
    if str(ref) in names:
        return ModelRef("zoo", str(ref))
    known = ", ".join(sorted(names)) or "none installed"
    raise LoadError(
        f"'{ref}' is neither an example network (zoo: {known}) nor an existing model file/folder."
    )


def open_model_ref(ref: str | Path | ModelRef, *, activation: str | None = None) -> Network:
    """Open a reference as a `Network`: the zoo network, or `load_model(path, activation=)`."""
    resolved = ref if isinstance(ref, ModelRef) else model_ref(ref)
    if resolved.kind == "zoo":
        return zoo.load(resolved.name)
    assert resolved.path is not None
    return load_model(resolved.path, activation=activation)
