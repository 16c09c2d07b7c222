"""Options of one dashboard instance (`AppConfig`), shared by create_app, services and uploads."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AppConfig", "default_cache_dir", "default_models", "default_upload_dir"]

GIB = 1024**3
DEFAULT_UPLOAD_TTL_S = 24 * 3600.0


def default_models() -> list[str]:
    """All example networks of the zoo, or an empty list when the zoo cannot be read."""
    try:
        import svdcore as sc

        return list(sc.zoo.names())
    except Exception:  # the zoo is optional for the page to start
        return []


def default_upload_dir() -> Path:
    """A per-user folder under the system temp dir (uploads are transient)."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return Path(tempfile.gettempdir()) / f"svdscope-uploads-{uid}"


def default_cache_dir() -> Path:
    """The per-user filesystem result cache ($XDG_CACHE_HOME or ~/.cache, /svdscope/results),
    shared by every process of one user on this host (gunicorn workers, `svdscope serve`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "svdscope" / "results"


@dataclass(kw_only=True)
class AppConfig:
    """Keyword options of `create_app`.

    models: zoo names and/or model file paths shown in the model picker (default: the zoo).
    upload_dir: where each browser session's uploads are stored, one folder per session.
    max_upload_bytes: largest accepted upload; enforced while the body streams in.
    max_uploads_per_session: further uploads are refused with a message.
    upload_ttl_s: uploads are deleted this many seconds after they were sent (the page
        then says the file expired); None keeps them (SVDSCOPE_UPLOAD_TTL; 0 or "none").
    cache_dir: None keeps analysis results in memory; a folder uses a filesystem cache.
    cache_threshold: most entries either cache keeps before evicting.
    title: browser tab and page heading.
    redis_url: a Redis for results, cancel flags and the Celery job queue (app/deploy.py);
        None keeps them on this host (cache_dir or memory; diskcache background jobs).
    redis_required: refuse to start when redis_url cannot be reached (else: log, fall back).
    basic_auth: "user:password" lines; when set, every route but /healthz asks for them.
    datasets: dataset files offered to every session beside its uploads (`svdscope serve
        --data`, `svdscope.show(model, dataset=...)`): a path, or "path::labels" naming the
        label column / array of a .csv / .npz / .pt.
    """

    models: list[str] = field(default_factory=default_models)
    upload_dir: Path = field(default_factory=default_upload_dir)
    max_upload_bytes: int = 2 * GIB
    max_uploads_per_session: int = 32
    upload_ttl_s: float | None = DEFAULT_UPLOAD_TTL_S
    cache_dir: Path | None = None
    cache_threshold: int = 512
    title: str = "svdscope"
    redis_url: str | None = None
    redis_required: bool = False
    basic_auth: str | None = None
    datasets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.models = [str(m) for m in self.models]
        self.datasets = [str(d) for d in self.datasets]
        self.upload_dir = Path(self.upload_dir)
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)
        if self.max_upload_bytes <= 0:
            raise ValueError("max_upload_bytes must be positive")
        if self.upload_ttl_s is not None and not self.upload_ttl_s > 0:
            raise ValueError("upload_ttl_s must be a positive number of seconds, or None")
