"""What the analyses that run a network on a dataset share: their explicit dependencies."""

from __future__ import annotations

from app.services.caches import ResultCaches
from app.services.datasets import DatasetService
from app.services.registry import ModelRegistry

__all__ = ["DataAnalysis"]


class DataAnalysis:
    """Base of the descramble, subspace, inversion and surgery services: the model registry,
    the result caches and the dataset service, given by `app.services.Services`."""

    def __init__(
        self, registry: ModelRegistry, caches: ResultCaches, datasets: DatasetService
    ) -> None:
        self.registry = registry
        self.caches = caches
        self.datasets = datasets
