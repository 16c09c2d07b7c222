"""The model registry: which networks a browser session can open, opened once per process.

Resolves model ids to opened `sc.Network`s (zoo and configured files per process, uploads
per browser session, the last `MAX_OPEN_UPLOADS` kept open) and the content keys of their
matrices (memoised per network, so cached views of a large layer never read its weights
again). Every analysis service gets this registry explicitly (app/services/__init__.py).
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import svdcore as sc
from app.config import AppConfig
from app.storage.uploads import StoredUpload, UploadStore, format_duration

__all__ = ["MAX_OPEN_UPLOADS", "UPLOAD_PREFIX", "ModelEntry", "ModelRegistry", "OpenedUpload"]

UPLOAD_PREFIX = "upload-"
MAX_OPEN_UPLOADS = 8


@dataclass(frozen=True)
class ModelEntry:
    id: str
    label: str
    kind: str  # "zoo" | "file" | "upload"
    description: str = ""
    path: Path | None = None


@dataclass(frozen=True)
class OpenedUpload:
    id: str
    label: str
    net: Any


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


class ModelRegistry:
    """Per-process registry of networks; safe to call from threads."""

    def __init__(self, config: AppConfig, uploads: UploadStore, dataset_uploads: UploadStore):
        self.config = config
        self.uploads = uploads
        self.dataset_uploads = dataset_uploads
        self._lock = threading.RLock()
        self._nets: dict[str, Any] = {}
        # the last MAX_OPEN_UPLOADS uploads opened stay open (a stored upload never changes)
        self._upload_net = functools.lru_cache(maxsize=MAX_OPEN_UPLOADS)(self._open_stored)
        self._entries: dict[str, ModelEntry] = {}
        for spec in config.models:
            entry = self._entry_for_spec(spec)
            self._entries[entry.id] = entry

    def _entry_for_spec(self, spec: str) -> ModelEntry:
        ref = sc.model_ref(spec)  # the one "zoo name or file path" rule (svdcore/refs.py)
        if ref.kind == "zoo":
            try:
                meta = sc.zoo.get(spec)
                title, description = meta.title, meta.description
            except Exception:
                title, description = spec, ""
            return ModelEntry(spec, f"{spec} — {title}", "zoo", description)
        path = ref.path
        assert path is not None
        zoo_names = self._zoo_names()
        base = _slug(path.stem if path.is_file() else path.name)
        model_id, n = base, 2
        while model_id in self._entries or model_id in zoo_names:
            model_id, n = f"{base}-{n}", n + 1
        return ModelEntry(model_id, path.name, "file", str(path), path)

    @staticmethod
    def _zoo_names() -> list[str]:
        try:
            return list(sc.zoo.names())
        except Exception:
            return []

    def models(self, session: str | None) -> list[ModelEntry]:
        """Configured models, then this session's uploads (oldest first)."""
        found = list(self._entries.values())
        for up in self.uploads.list(session):
            found.append(
                ModelEntry(f"{UPLOAD_PREFIX}{up.file_id}", f"⇪ {up.name}", "upload", up.name)
            )
        return found

    def model_entry(self, model_id: str, session: str | None) -> ModelEntry:
        if model_id in self._entries:
            return self._entries[model_id]
        if model_id.startswith(UPLOAD_PREFIX) and session is not None:
            up = self.uploads.get(session, model_id[len(UPLOAD_PREFIX) :])
            if up is not None:
                return ModelEntry(model_id, f"⇪ {up.name}", "upload", up.name, up.path)
        gone = self.upload_gone_message(model_id, session)
        if gone is not None:
            raise sc.LoadError(gone)
        raise sc.LoadError(
            f"The model '{model_id}' is not available in this browser session; "
            "pick one from the list or upload the file again."
        )

    def network(self, model_id: str, session: str | None) -> Any:
        """The opened `sc.Network` for `model_id` (raises sc.LoadError with a sentence)."""
        entry = self.model_entry(model_id, session)
        if entry.kind == "upload":
            assert session is not None
            return self.open_upload(session, model_id[len(UPLOAD_PREFIX) :]).net
        with self._lock:
            net = self._nets.get(model_id)
        if net is None:  # load outside the lock: other users keep being served meanwhile
            net = sc.open_model_ref(model_id if entry.kind == "zoo" else entry.path)
            with self._lock:
                net = self._nets.setdefault(model_id, net)
        return net

    def open_upload(self, session: str, file_id: str) -> OpenedUpload:
        """Open (or reuse) an uploaded file of `session` with sc.load_model."""
        up = self.uploads.get(session, file_id)
        if up is None:
            raise sc.LoadError(
                self.upload_gone_message(f"{UPLOAD_PREFIX}{file_id}", session)
                or "This uploaded model is no longer stored for this browser session; "
                "upload the file again."
            )
        return OpenedUpload(f"{UPLOAD_PREFIX}{file_id}", up.name, self._upload_net(up))

    @staticmethod
    def _open_stored(up: StoredUpload) -> Any:
        """sc.load_model of a stored upload (memoised per registry in `_upload_net`)."""
        try:
            return sc.load_model(up.path)
        except sc.SvdscopeError as err:  # speak of the user's file name, not the stored one
            raise type(err)(str(err).replace(up.path.name, up.name)) from err

    def upload_gone_message(
        self, upload_id: str, session: str | None, *, dataset: bool = False
    ) -> str | None:
        """The sentence for an upload id ("upload-<file id>") of `session` whose file has
        expired (`AppConfig.upload_ttl_s`), else None."""
        store = self.dataset_uploads if dataset else self.uploads
        if not upload_id.startswith(UPLOAD_PREFIX) or store.ttl_s is None:
            return None
        name = store.expired(session, upload_id[len(UPLOAD_PREFIX) :])
        if name is None:
            return None
        kept = format_duration(store.ttl_s)
        return (
            f"The uploaded file '{name}' has expired: uploads are deleted {kept} after they "
            "are sent. Upload it again to keep working with it."
        )

    def layers(self, model_id: str, session: str | None) -> list[Any]:
        return list(self.network(model_id, session).layers)

    def first_viewable_layer(self, model_id: str, session: str | None) -> str | None:
        for info in self.layers(model_id, session):
            if info.matrix_shape is not None:
                return info.name
        return None

    def layer_info(self, model_id: str, layer: str, session: str | None) -> Any:
        return self.network(model_id, session).layer(layer)

    @staticmethod
    def matrix_and_key(net: Any, layer: str, view: str) -> tuple[Any, str]:
        """A layer's matrix and its content key (hashed once per network, see
        `sc.Network.matrix_key`)."""
        W = net.matrix(layer, view=view)
        return W, net.matrix_key(layer, view=view, matrix=W)

    @staticmethod
    def layer_key(net: Any, layer: str, view: str) -> str:
        """The content key of a layer's matrix; the matrix is read (and hashed) only the
        first time, so cached views of a large layer never touch its weights again."""
        return net.matrix_key(layer, view=view)

    def layer_view(
        self, model_id: str, layer: str, view: str, session: str | None
    ) -> tuple[str, tuple[int, int], Any]:
        """(content key, matrix shape, ViewInfo) of a layer's matrix view, cheaply."""
        net = self.network(model_id, session)
        info = net.view_info(layer, view=view)
        return self.layer_key(net, layer, view), tuple(info.shape), info
