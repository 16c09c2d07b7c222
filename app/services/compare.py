"""Compare one layer of two models (two checkpoints, or two trainings of one architecture).

`CompareService` is built once by `app.services.Services` with what it needs.
The
comparison itself is
`svdcore.compare.compare_layers` (difference, both spectra, principal angles and overlap
matrices of the top-k singular subspaces), cached by the content keys of both matrices.
`compare_choices` says which models and layers can be compared with the selected layer:
a layer of the second model qualifies when its tensor has the same shape (then every
matrix view of the two has the same shape too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import svdcore as sc
from app.services.caches import ResultCaches
from app.services.registry import ModelRegistry
from svdcore.compare import LayerComparison, compare_layers

__all__ = ["CompareChoices", "CompareData", "CompareService"]

# above this min(m, n) only the top singular triplets are computed (as in the vector view)
COMPARE_FULL_SVD_MAX_SIDE = 2048
COMPARE_TRUNCATED_RANK = 64


@dataclass(frozen=True)
class CompareData:
    comparison: LayerComparison
    info: Any  # ViewInfo of the first model's layer (axes, labels)
    truncated: bool  # spectra and subspaces from a top-COMPARE_TRUNCATED_RANK SVD


@dataclass(frozen=True)
class CompareChoices:
    """What the second-model pickers offer for the selected layer, and what they show.

    ``models``: (id, label) of every model of the session (the first model included, for a
    sanity check against itself); ``model``: the chosen second model or None; ``layers``:
    the names of its layers with the selected layer's tensor shape; ``layer``: the chosen
    one or None; ``message``: why nothing can be compared, when that is so.
    """

    models: list[tuple[str, str]]
    model: str | None
    layers: list[str]
    layer: str | None
    message: str | None = None


def _shared_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of two model ids (character by character)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class CompareService:
    """The comparison analyses of the page."""

    def __init__(self, registry: ModelRegistry, caches: ResultCaches) -> None:
        self.registry = registry
        self.caches = caches

    def compatible_layers(
        self, model_id: str, layer: str, other_id: str, session: str | None
    ) -> list[str]:
        """Layers of `other_id` whose tensor has the shape of `layer` of `model_id`."""
        target = self.registry.layer_info(model_id, layer, session)
        return [
            li.name
            for li in self.registry.layers(other_id, session)
            if li.matrix_shape is not None and tuple(li.shape) == tuple(target.shape)
        ]

    def choices(
        self,
        model_id: str,
        layer: str,
        session: str | None,
        *,
        other: str | None = None,
        other_layer: str | None = None,
    ) -> CompareChoices:
        """Resolve the second model and layer: the requested ones when they fit, else the
        model whose id shares the longest prefix with `model_id` (a sibling such as
        ilr-biexp-ndnd / ilr-biexp-ndreg) among those with a layer of the same shape, and
        in it the layer of the same name, else its first layer of that shape."""
        entries = self.registry.models(session)
        models = [(m.id, m.label + (" (this model)" if m.id == model_id else "")) for m in entries]
        ids_ = [m.id for m in entries]
        if other in ids_:
            candidates = [other]
        else:
            others = [m for m in ids_ if m != model_id]
            others.sort(key=lambda m: -_shared_prefix(m, model_id))  # stable: list order next
            candidates = others
        for candidate in candidates:
            try:
                layers = self.compatible_layers(model_id, layer, candidate, session)
            except sc.SvdscopeError:
                layers = []
            if layers or candidate == other:
                chosen = other_layer if other_layer in layers else None
                if chosen is None and layers:
                    chosen = layer if layer in layers else layers[0]
                message = None
                if not layers:
                    shape = "×".join(
                        map(str, self.registry.layer_info(model_id, layer, session).shape)
                    )
                    message = (
                        f"The model '{candidate}' has no layer with the shape of {layer} "
                        f"({shape}); choose another model, or upload a checkpoint of the "
                        "same architecture."
                    )
                return CompareChoices(models, candidate, layers, chosen, message)
        return CompareChoices(
            models,
            None,
            [],
            None,
            f"No other model here has a layer with the shape of {layer}: upload a second "
            "checkpoint of the same architecture (another training run, another epoch) to "
            "compare, or pick this model itself as a check.",
        )

    def run(
        self,
        model_id: str,
        layer: str,
        view: str,
        other_id: str,
        other_layer: str,
        k: int,
        session: str | None,
    ) -> CompareData:
        """`compare_layers` of `layer` (model_id) against `other_layer` (other_id), both in
        matrix view `view`, top-k subspaces; cached by both matrices' contents and k."""
        model_a = self.registry.open(model_id, session)
        Wa, key_a = model_a.matrix(layer, view)
        Wb, key_b = self.registry.open(other_id, session).matrix(other_layer, view)
        truncated = min(Wa.shape) > COMPARE_FULL_SVD_MAX_SIDE
        rank = COMPARE_TRUNCATED_RANK if truncated else None
        k = max(1, int(k))
        key = sc.cache.make_key("compare", key_a, key_b, k, rank)
        comparison = self.caches.cache.get_or_compute(
            key, lambda: compare_layers(Wa, Wb, k=k, rank=rank)
        )
        return CompareData(comparison, model_a.view_info(layer, view), truncated)
