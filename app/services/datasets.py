"""Datasets for the page: the zoo's own data and this session's uploaded dataset files.

`DatasetService` is built once by `app.services.Services` with what it needs.
A dataset id is ``"zoo"`` (the
data an example network was made for, `sc.zoo.dataset`) or ``"upload-<file id>"`` (a file
of this browser session in `ModelRegistry.dataset_uploads`, opened with `sc.load_dataset`, never
unpickled). Datasets are opened for one model: ``input_shape=net.input_shape``, so a file
whose samples do not fit the model raises svdcore's `DataError` naming both shapes.
Opened datasets are kept in a small per-process memo with a content key (blake2b of the
tensors) that the analyses put into their cache keys.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import svdcore as sc
from app.services.registry import ModelRegistry
from app.storage.uploads import StoredUpload

__all__ = [
    "DATASET_FILE_PREFIX",
    "DATASET_UPLOAD_PREFIX",
    "DATASET_ZOO",
    "DatasetEntry",
    "DatasetService",
    "OpenedDataset",
]

DATASET_ZOO = "zoo"
DATASET_UPLOAD_PREFIX = "upload-"
DATASET_FILE_PREFIX = "file-"  # "file-<i>": the i-th of AppConfig.datasets
ZOO_SEED = 0
_MEMO_SIZE = 8


@dataclass(frozen=True)
class DatasetEntry:
    id: str
    label: str  # for the picker
    kind: str  # "zoo" | "upload" | "file" (given when the server started)
    name: str  # the file name (uploads) or the zoo data's name


@dataclass(frozen=True, eq=False)
class OpenedDataset:
    """A dataset opened for one model: ``data`` (sc.Dataset, reshaped to the model's input
    shape when it has one) and ``key``, the content key of its tensors."""

    entry: DatasetEntry
    data: Any  # sc.Dataset
    key: str
    split: str | None = None  # zoo data: "train" or "test"


def _describe(ds: Any) -> str:
    shape = "×".join(str(s) for s in ds.sample_shape)
    text = f"{len(ds):,} samples of shape {shape}"
    if ds.y is None:
        return text + ", no labels"
    if ds.is_classification:
        n = len(ds.classes) if ds.classes else int(torch.unique(ds.y).numel())
        return text + f", {n} classes"
    return text + f", targets of shape {'×'.join(str(s) for s in ds.y.shape[1:]) or 'scalar'}"


class DatasetService:
    """The dataset analyses of the page."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        # the last _MEMO_SIZE datasets opened (for a model's input shape), with their keys
        self._opened = functools.lru_cache(maxsize=_MEMO_SIZE)(self._load)

    # ------------------------------------------------------------------ listing
    def entries(self, model_id: str | None, session: str | None) -> list[DatasetEntry]:
        """The zoo's own data when `model_id` is an example network, then this session's
        uploaded datasets (oldest first)."""
        found: list[DatasetEntry] = []
        if model_id:
            try:
                entry = self.registry.model_entry(model_id, session)
            except sc.SvdscopeError:
                entry = None
            if entry is not None and entry.kind == "zoo":
                found.append(
                    DatasetEntry(DATASET_ZOO, f"{model_id}: its own data", "zoo", model_id)
                )
        for i, spec in enumerate(self.registry.config.datasets):
            path, _ = _file_spec(spec)
            found.append(
                DatasetEntry(f"{DATASET_FILE_PREFIX}{i}", f"{path.name} (given)", "file", path.name)
            )
        for up in self.registry.dataset_uploads.list(session):
            found.append(_upload_entry(up))
        return found

    def default(self, model_id: str | None, session: str | None) -> str | None:
        """The dataset a model starts with: its zoo data, else the first dataset file given
        at start (`AppConfig.datasets`), else none."""
        ids = [d.id for d in self.entries(model_id, session)]
        if DATASET_ZOO in ids:
            return DATASET_ZOO
        return f"{DATASET_FILE_PREFIX}0" if self.registry.config.datasets else None

    # ------------------------------------------------------------------ uploads
    def check_upload(self, session: str, file_id: str) -> DatasetEntry:
        """Read a freshly uploaded file once (no model shape yet): a file svdcore refuses
        raises its error, worded with the user's file name."""
        up = self._stored_dataset(session, file_id)
        self._read_upload(up, None)
        return _upload_entry(up)

    def _stored_dataset(self, session: str | None, file_id: str) -> StoredUpload:
        up = None if session is None else self.registry.dataset_uploads.get(session, file_id)
        if up is None:
            gone = self.registry.upload_gone_message(
                f"{DATASET_UPLOAD_PREFIX}{file_id}", session, dataset=True
            )
            raise sc.LoadError(
                gone
                or "This uploaded dataset is no longer stored for this browser session; "
                "upload the file again."
            )
        return up

    @staticmethod
    def _read_upload(up: StoredUpload, input_shape: tuple[int, ...] | None) -> Any:
        try:
            return sc.load_dataset(up.path, labels=up.labels, input_shape=input_shape, name=up.name)
        except sc.SvdscopeError as err:  # speak of the user's file name, not the stored one
            raise type(err)(str(err).replace(up.path.name, up.name)) from err

    # ------------------------------------------------------------------ opening
    def open(
        self,
        model_id: str,
        dataset_id: str | None,
        session: str | None,
        *,
        split: str = "test",
    ) -> OpenedDataset:
        """Dataset `dataset_id` opened for model `model_id` (zoo data: its `split`).

        Raises sc.DataError when no dataset is chosen or its samples do not fit the model
        (svdcore's sentence, naming both shapes), sc.LoadError when it is gone or unreadable.
        """
        if not dataset_id:
            raise sc.DataError(
                "No dataset is chosen for this model; pick one under Dataset in the sidebar "
                "or upload a file (.npy, .npz, .csv, .pt or a .zip of images)."
            )
        model = self.registry.open(model_id, session)
        shape = tuple(model.net.input_shape) if model.net.input_shape else None
        if dataset_id == DATASET_ZOO:
            entry = model.entry
            if entry.kind != "zoo":
                raise sc.DataError(
                    f"'{entry.label}' is not an example network, so it has no data of its "
                    "own; pick or upload a dataset in the sidebar."
                )
            return self._opened("zoo", model_id, split)
        if dataset_id.startswith(DATASET_FILE_PREFIX):
            index = dataset_id[len(DATASET_FILE_PREFIX) :]
            if not index.isdigit() or int(index) >= len(self.registry.config.datasets):
                raise sc.LoadError(f"There is no dataset '{dataset_id}' on this server.")
            return self._opened("file", int(index), shape)
        if not dataset_id.startswith(DATASET_UPLOAD_PREFIX):
            raise sc.LoadError(f"There is no dataset '{dataset_id}' in this browser session.")
        up = self._stored_dataset(session, dataset_id[len(DATASET_UPLOAD_PREFIX) :])
        return self._opened("upload", up, shape)

    def _load(self, kind: str, what: Any, shape_or_split: Any) -> OpenedDataset:
        """Open a dataset (uncached; `_opened` memoises it): the zoo data of model `what`
        (its split), the `what`-th dataset file given at start, or the stored upload `what`
        (a frozen StoredUpload), for a model's input shape."""
        if kind == "zoo":
            split = shape_or_split
            data = sc.zoo.dataset(what, split=split, seed=ZOO_SEED)
            label = f"{what}: its own data ({split} split)"
            entry = DatasetEntry(DATASET_ZOO, label, "zoo", data.name)
            return OpenedDataset(entry, data, _content_key(data), split)
        if kind == "file":
            path, labels = _file_spec(self.registry.config.datasets[what])
            data = sc.load_dataset(path, labels=labels, input_shape=shape_or_split, name=path.name)
            entry = DatasetEntry(
                f"{DATASET_FILE_PREFIX}{what}", f"{path.name} (given)", "file", path.name
            )
            return OpenedDataset(entry, data, _content_key(data))
        data = self._read_upload(what, shape_or_split)
        return OpenedDataset(_upload_entry(what), data, _content_key(data))

    def summary(self, model_id: str, dataset_id: str | None, session: str | None) -> str | None:
        """One line about the chosen dataset ("359 samples of shape 64, 10 classes"), None
        when none is chosen; raises like `dataset` when it cannot be used."""
        if not dataset_id:
            return None
        opened = self.open(model_id, dataset_id, session)
        text = _describe(opened.data)
        if opened.split:
            text += f" ({opened.split} split)"
        notes = " ".join(opened.data.notes)
        return f"{text}. {notes}".strip() if notes else text

    def inputs(
        self, model_id: str, dataset_id: str, session: str | None, n: int
    ) -> tuple[torch.Tensor, str]:
        """The first n inputs of a dataset, and a note when it has fewer."""
        opened = self.open(model_id, dataset_id, session)
        x = opened.data.x
        note = ""
        if len(x) < n:
            note = (
                f"{opened.entry.name} has {len(x):,} inputs; all of them are used (N asked: {n:,})."
            )
        return x[:n], note

    def class_choices(
        self, model_id: str, dataset_id: str | None, session: str | None, *, split: str = "test"
    ) -> tuple[list[tuple[int, str]], int]:
        """([(label, name)] of the classes present, number of samples) of the dataset;
        no classes when its targets are not class labels."""
        ds = self.open(model_id, dataset_id, session, split=split).data
        if not ds.is_classification:
            return [], len(ds)
        labels = sorted(int(v) for v in torch.unique(ds.y).tolist())
        names = ds.classes or []
        return [(c, names[c] if c < len(names) else str(c)) for c in labels], len(ds)


def _upload_entry(up: StoredUpload) -> DatasetEntry:
    label = f"⇪ {up.name}" + (f" (labels: {up.labels})" if up.labels else "")
    return DatasetEntry(f"{DATASET_UPLOAD_PREFIX}{up.file_id}", label, "upload", up.name)


def _content_key(data: Any) -> str:
    y = None if data.y is None else sc.cache.tensor_key(data.y)
    classes = tuple(data.classes) if data.classes else None
    return sc.cache.make_key("dataset", sc.cache.tensor_key(data.x), y, classes)


def flat_inputs(data: Any) -> torch.Tensor:
    """(N, prod(sample_shape)) inputs of a dataset."""
    return data.x.reshape(data.x.shape[0], math.prod(data.sample_shape))


def _file_spec(spec: str) -> tuple[Path, str | None]:
    """ "path" or "path::labels" (AppConfig.datasets) -> (path, labels or None)."""
    path, sep, labels = str(spec).partition("::")
    return Path(path), (labels or None) if sep else None
