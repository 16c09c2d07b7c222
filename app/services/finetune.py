"""Fine-tune table for the page: every layer of model B against the same layer of model A.

`FinetuneService` is built once by `app.services.Services` with what it needs. One row per
shared layer (:func:`svdcore.finetune.layer_delta`: relative change, the spectrum of
ΔW = W_B - W_A with its ranks, the overlap of the top-k singular subspaces), each kept in
the shared cache under the content keys of both matrices, so a reopened pair, another
session or another worker finds it at once. Pairs of layers up to `INLINE_MAX_ELEMENTS`
entries are computed while the page waits, larger ones by the Compare tab's fine-tune job
(`compute`, layer by layer). When B is a PEFT adapter folder, A with the adapter merged in
is compared (the table is then the adapter's ΔW per module).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

import svdcore as sc
from app.services.caches import ResultCaches
from app.services.jobs import rows_by_entries
from app.services.overview import INLINE_MAX_ELEMENTS, PENDING_NOTE
from app.services.registry import ModelRegistry
from svdcore.finetune import LayerDelta, finetune_table, layer_delta, shared_layers

__all__ = ["FINETUNE_K", "FinetuneData", "FinetuneService"]

FINETUNE_K = 8  # the top-k subspaces compared in the table
_ROW_VERSION = 1


@dataclass(frozen=True)
class FinetuneData:
    table: pd.DataFrame  # svdcore.finetune.FINETUNE_COLUMNS
    pending: tuple[str, ...] = field(default=())  # layers the job still computes
    elements: int = 0  # entries of the pending matrices
    adapter: bool = False  # B is a PEFT adapter merged into A

    @property
    def complete(self) -> bool:
        return not self.pending


class FinetuneService:
    """The Compare tab's whole-checkpoint table (see the module docstring)."""

    def __init__(self, registry: ModelRegistry, caches: ResultCaches) -> None:
        self.registry = registry
        self.caches = caches
        # base Network -> adapter Network -> the merged one, made once: its content keys are
        # memoised on it (a new merge per request would hash the whole model every time)
        self._merged: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def _pair(self, model_a: str, model_b: str, session: str | None) -> tuple[Any, Any, bool]:
        base = self.registry.open(model_a, session).net
        tuned = self.registry.open(model_b, session).net
        adapter = sc.adapter_of(tuned)
        if adapter is None:
            return base, tuned, False
        merged = self._merged.setdefault(base, weakref.WeakKeyDictionary())
        if tuned not in merged:
            merged[tuned] = sc.apply_lora(base, adapter)
        return base, merged[tuned], True

    @staticmethod
    def _row_key(base: Any, tuned: Any, name: str) -> str:
        keys = (base.matrix_key(name), tuned.matrix_key(name))
        return sc.cache.make_key("finetune-row", _ROW_VERSION, FINETUNE_K, *keys)

    def _row(self, base: Any, tuned: Any, name: str, *, compute: bool) -> LayerDelta | None:
        shared = self.caches.shared_cache
        key = self._row_key(base, tuned, name)
        if not compute:
            return shared.backend.get(key)
        return shared.get_or_compute(
            key, lambda: layer_delta(base.matrix(name), tuned.matrix(name), k=FINETUNE_K, name=name)
        )

    def key(self, model_a: str, model_b: str, session: str | None) -> str:
        base, tuned, _ = self._pair(model_a, model_b, session)
        return sc.cache.make_key("finetune", _ROW_VERSION, base.content_key(), tuned.content_key())

    def data(
        self,
        model_a: str,
        model_b: str,
        session: str | None,
        *,
        inline_max_elements: float | None = None,
    ) -> FinetuneData:
        """The table: rows cached or of at most `inline_max_elements` entries (default
        `INLINE_MAX_ELEMENTS`; math.inf: all) are filled in, the others `pending`."""
        limit = INLINE_MAX_ELEMENTS if inline_max_elements is None else inline_max_elements
        base, tuned, adapter = self._pair(model_a, model_b, session)
        names, notes = shared_layers(base, tuned)
        rows, pending, elements = [], [], 0
        for name in names:
            size = math.prod(base.layer(name).matrix_shape)
            small = size <= limit
            row = self._row(base, tuned, name, compute=small)
            if row is None:
                pending.append(name)
                elements += size
            else:
                rows.append(row)
        table = finetune_table(rows, notes={**{n: PENDING_NOTE for n in pending}, **notes})
        return FinetuneData(table, tuple(pending), elements, adapter)

    def compute(
        self,
        model_a: str,
        model_b: str,
        session: str | None,
        *,
        progress: Callable[..., None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> bool:
        """The job: every row not cached yet, one layer at a time (kept as soon as done),
        reporting ``progress(done, total, layer, layers_done, layers_total, elapsed_s,
        left_s)`` in matrix entries, as the overview job. True when stopped."""
        base, tuned, _ = self._pair(model_a, model_b, session)
        names, _ = shared_layers(base, tuned)
        todo = [
            (n, math.prod(base.layer(n).matrix_shape))
            for n in names
            if self._row(base, tuned, n, compute=False) is None
        ]
        return rows_by_entries(
            todo,
            lambda name: self._row(base, tuned, name, compute=True),
            progress=progress,
            should_stop=should_stop,
        )

    def csv(self, model_a: str, model_b: str, session: str | None) -> dict[str, str]:
        """The table as a dcc.Download of "<A>-vs-<B>-finetune.csv"."""
        data = self.data(model_a, model_b, session)
        stems = [self.registry.file_stem(m, session) for m in (model_a, model_b)]
        return {
            "content": data.table.to_csv(index=False),
            "filename": f"{stems[0]}-vs-{stems[1]}-finetune.csv",
            "type": "text/csv",
        }
