"""Services: the only bridge between the page and svdcore.

`Services(config)` is the composition root of one process: it builds the upload stores
(app/storage), the result caches (`caches.ResultCaches`), the model registry
(`registry.ModelRegistry`, which opens each model once and keys its matrices by content)
and one service object per analysis, each given exactly what it needs:

    services.registry     models, layers, opened networks        registry.py
    services.layers       layer table, weights, spectrum, vectors layers.py
    services.esd          the ESD panel: fits, MP bulk, traps     esd.py
    services.finetune     every layer of B against A (fine-tunes) finetune.py
    services.heads        attention heads' W_QK / W_OV spectra     heads.py
    services.datasets     datasets for a model                    datasets.py
    services.descramble   descramblers, FFTs                      descramble.py
    services.subspaces    four subspaces, projections             subspaces.py
    services.inversion    inputs for a target output              inversion.py
    services.surgery      spectral surgery                        surgery.py
    services.overview     the per-layer spectral table            overview.py
    services.fits         signal fits of singular vectors         vector_fits.py
    services.compare      layer A against layer B                 compare.py
    services.jobs         cancel flags of background runs         jobs.py

The analyses take the page's strings (model id, layer, view, options, session), resolve the
model through `registry.open` into an `OpenedModel` (its entry, network and content-keyed
matrices; once per web request or CLI command, shared by every analysis it runs) and run
svdcore through the content-keyed caches. Errors
that svdcore raises on purpose (`sc.SvdscopeError`) carry a sentence meant for the user:
`error_message` returns it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import svdcore as sc
from app.config import AppConfig
from app.services.caches import ResultCaches
from app.services.compare import CompareService
from app.services.datasets import DatasetEntry, DatasetService, OpenedDataset
from app.services.descramble import DescrambleData, DescrambleOptions, DescrambleService
from app.services.esd import EsdData, EsdOptions, EsdService
from app.services.finetune import FinetuneData, FinetuneService
from app.services.heads import HeadsData, HeadsService
from app.services.inversion import InversionData, InversionOptions, InversionService
from app.services.jobs import JobFlags
from app.services.layers import LayerViews, SpectrumData, VectorsData, WeightsData
from app.services.overview import OverviewData, OverviewService
from app.services.registry import ModelEntry, ModelRegistry
from app.services.subspaces import (
    ProjectionData,
    SubspacesData,
    SubspacesOptions,
    SubspacesService,
)
from app.services.surgery import SurgeryService
from app.services.vector_fits import VectorFitOptions, VectorFitsData, VectorFitService
from app.storage.uploads import DATASET_SUFFIXES, UploadStore

__all__ = [
    "DatasetEntry",
    "DescrambleData",
    "DescrambleOptions",
    "EsdData",
    "EsdOptions",
    "FinetuneData",
    "HeadsData",
    "InversionData",
    "InversionOptions",
    "ModelEntry",
    "OpenedDataset",
    "OverviewData",
    "ProjectionData",
    "Services",
    "SpectrumData",
    "SubspacesData",
    "SubspacesOptions",
    "VectorFitOptions",
    "VectorFitsData",
    "VectorsData",
    "WeightsData",
    "error_message",
]

log = logging.getLogger(__name__)


def error_message(err: BaseException) -> str:
    """The sentence to show for `err`: svdcore's own text, else a generic one (logged)."""
    if isinstance(err, sc.SvdscopeError):
        return str(err)
    log.exception("unexpected error in an svdscope view", exc_info=err)
    return (
        "Something went wrong while computing this view "
        f"({type(err).__name__}); the details are in the server log."
    )


class Services:
    """The services of one process (see the module docstring); safe to call from threads.

    `cache` keeps results in this process (memory) or on disk (`config.cache_dir`);
    `shared_cache` is the one that background-job processes see too; `jobs_dir` is where
    the background-job manager keeps its queue; `redis` / `redis_url` are set when the
    lab's Redis is reachable (app/services/caches.py).
    """

    error_message = staticmethod(error_message)

    def __init__(self, config: AppConfig | None = None) -> None:
        self.config = config or AppConfig()
        limits = {
            "max_bytes": self.config.max_upload_bytes,
            "max_files": self.config.max_uploads_per_session,
            "ttl_s": self.config.upload_ttl_s,
        }
        self.uploads = UploadStore(self.config.upload_dir, **limits)
        self.dataset_uploads = UploadStore(
            self.config.upload_dir / "datasets",
            suffixes=DATASET_SUFFIXES,
            what="dataset",
            too_big_hint="upload a smaller sample of it",
            **limits,
        )
        for store in (self.uploads, self.dataset_uploads):  # what expired while stopped
            try:
                store.sweep()
            except OSError as err:  # an unreadable upload folder must not stop the page
                log.warning("svdscope: could not sweep expired uploads in %s (%s)", store.root, err)
        self.caches = ResultCaches(self.config)
        self.registry = ModelRegistry(self.config, self.uploads, self.dataset_uploads)
        self.jobs = JobFlags(self.caches.shared_cache)
        self.layers = LayerViews(self.registry, self.caches)
        self.esd = EsdService(self.registry, self.caches, self.layers)
        self.finetune = FinetuneService(self.registry, self.caches)
        self.heads = HeadsService(self.registry, self.caches)
        self.datasets = DatasetService(self.registry)
        self.descramble = DescrambleService(self.registry, self.caches, self.datasets)
        self.subspaces = SubspacesService(self.registry, self.caches, self.datasets)
        self.inversion = InversionService(self.registry, self.caches, self.datasets)
        self.surgery = SurgeryService(self.registry, self.caches, self.datasets)
        self.overview = OverviewService(self.registry, self.caches)
        self.fits = VectorFitService(self.registry, self.caches, self.layers)
        self.compare = CompareService(self.registry, self.caches)

    # the caches, as the views and the deployment read them
    @property
    def cache(self) -> sc.cache.ResultCache:
        return self.caches.cache

    @property
    def shared_cache(self) -> sc.cache.ResultCache:
        return self.caches.shared_cache

    @property
    def jobs_dir(self) -> Path:
        return self.caches.jobs_dir

    @property
    def redis(self) -> Any:  # a redis.Redis, or None
        return self.caches.redis

    @property
    def redis_url(self) -> str | None:
        return self.caches.redis_url
