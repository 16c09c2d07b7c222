"""The model registry: which networks a browser session can open, opened once per process.

Resolves model ids to opened `sc.Network`s (zoo and configured files per process, uploads
per browser session, the last `MAX_OPEN_UPLOADS` kept open) and the content keys of their
matrices (memoised per network, so cached views of a large layer never read its weights
again). Every analysis service gets this registry explicitly (app/services/__init__.py).

`open(model_id, session)` resolves a model into an `OpenedModel` (its entry and network),
which the analyses pass around instead of looking the id up again. Inside
`request_scope()` (the app factory opens one per web request, the CLI one per command) a
model is resolved once: every analysis the request runs shares the same `OpenedModel`, and
an upload's stored record is read from disk once.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import svdcore as sc
from app.config import AppConfig
from app.storage.uploads import StoredUpload, UploadStore, format_duration

__all__ = [
    "MAX_OPEN_UPLOADS",
    "UPLOAD_PREFIX",
    "ModelEntry",
    "ModelRegistry",
    "OpenedModel",
    "OpenedUpload",
]

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
class OpenedModel:
    """A model resolved once: its registry entry and opened `sc.Network`, shared by the
    analyses of one request. Matrix keys are content keys (`sc.Network.matrix_key`,
    memoised per network: asking again never reads the weights again)."""

    entry: ModelEntry
    net: Any

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def layers(self) -> list[Any]:
        return list(self.net.layers)

    def layer(self, name: str) -> Any:
        """The layer's `sc.LayerInfo` (sc.LayerError naming it when there is none)."""
        return self.net.layer(name)

    def first_viewable_layer(self) -> str | None:
        return next((i.name for i in self.net.layers if i.matrix_shape is not None), None)

    def view_info(self, layer: str, view: str) -> Any:
        return self.net.view_info(layer, view=view)

    def key(self, layer: str, view: str) -> str:
        """The content key of a layer's matrix view; its weights are read (and hashed) the
        first time only, so cached views of a large layer never touch them again."""
        return self.net.matrix_key(layer, view=view)

    def matrix(self, layer: str, view: str) -> tuple[Any, str]:
        """A layer's matrix view and its content key."""
        W = self.net.matrix(layer, view=view)
        return W, self.net.matrix_key(layer, view=view, matrix=W)


# the models resolved in the current request, by (registry, model id, session); None
# outside a request scope
_REQUEST_MODELS: contextvars.ContextVar[dict[tuple[int, str, str | None], OpenedModel] | None] = (
    contextvars.ContextVar("svdscope_request_models", default=None)
)


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

    def file_stem(self, model_id: str, session: str | None) -> str:
        """The model's label as the start of a download's file name ("base.safetensors")."""
        label = self.open(model_id, session).entry.label.split(" — ")[0]
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "model"

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

    @staticmethod
    def begin_request() -> None:
        """Start a request scope (the web app's before_request): from here `open` resolves
        each (model id, session) once, until `end_request`."""
        _REQUEST_MODELS.set({})

    @staticmethod
    def end_request(*_: Any) -> None:
        """End the request scope (the web app's teardown_request)."""
        _REQUEST_MODELS.set(None)

    @staticmethod
    @contextlib.contextmanager
    def request_scope() -> Iterator[None]:
        """`begin_request` .. `end_request` around a block (the CLI: one per command); a
        scope opened inside another shares it."""
        if _REQUEST_MODELS.get() is not None:
            yield
            return
        token = _REQUEST_MODELS.set({})
        try:
            yield
        finally:
            _REQUEST_MODELS.reset(token)

    def open(self, model_id: str, session: str | None) -> OpenedModel:
        """The model `model_id` of `session`, resolved once per request scope (raises
        sc.LoadError with a sentence when it is not available)."""
        memo, name = _REQUEST_MODELS.get(), (id(self), model_id, session)
        if memo is not None and name in memo:
            return memo[name]
        entry = self.model_entry(model_id, session)
        model = OpenedModel(entry, self._network(entry, session))
        if memo is not None:
            memo[name] = model
        return model

    def network(self, model_id: str, session: str | None) -> Any:
        """The opened `sc.Network` for `model_id` (raises sc.LoadError with a sentence)."""
        return self.open(model_id, session).net

    def _network(self, entry: ModelEntry, session: str | None) -> Any:
        model_id = entry.id
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
            # named by the user's file name: svdcore's sentences speak of it, not the stored one
            return sc.load_model(up.path, name=up.name)
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

    # the questions the views ask by id, answered through `open`
    def layers(self, model_id: str, session: str | None) -> list[Any]:
        return self.open(model_id, session).layers

    def first_viewable_layer(self, model_id: str, session: str | None) -> str | None:
        return self.open(model_id, session).first_viewable_layer()

    def layer_info(self, model_id: str, layer: str, session: str | None) -> Any:
        return self.open(model_id, session).layer(layer)

    def layer_view(
        self, model_id: str, layer: str, view: str, session: str | None
    ) -> tuple[str, tuple[int, int], Any]:
        """(content key, matrix shape, ViewInfo) of a layer's matrix view, cheaply."""
        model = self.open(model_id, session)
        info = model.view_info(layer, view)
        return model.key(layer, view), tuple(info.shape), info
