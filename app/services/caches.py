"""Where analysis results live: memory, a filesystem folder, or a lab's Redis.

`ResultCaches(config)` builds, once per process, the two content-keyed result caches the
services share: `cache` (this process: memory, or `config.cache_dir` on disk) and
`shared_cache` (what background-job processes see too: the same disk cache, or a private
temporary folder when `cache` is in memory), and `jobs_dir`, where the diskcache job manager
keeps its queue. With `config.redis_url` reachable, `cache` and `shared_cache` are one
RedisCache (`redis` / `redis_url` are then set; else None).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cachelib import BaseCache, FileSystemCache, SimpleCache

import svdcore as sc
from app.config import AppConfig, DeploymentError, redact_url

if TYPE_CHECKING:
    import redis

__all__ = [
    "REDIS_RESULT_TTL_S",
    "ResultCaches",
    "connect_redis",
    "redis_result_backend",
]

log = logging.getLogger(__name__)

REDIS_CONNECT_TIMEOUT_S = 3.0
REDIS_SOCKET_TIMEOUT_S = 60.0  # large results (a 4096^2 SVD is ~130 MB) take a while to move
# Results kept in Redis expire after a week, so that Redis' `volatile-lru` policy (see
# docker-compose.yml) may evict them under memory pressure while leaving Celery's queues alone.
REDIS_RESULT_TTL_S = 7 * 24 * 3600
REDIS_KEY_PREFIX = "svdscope-cache:"


def connect_redis(config: AppConfig) -> redis.Redis | None:
    """A connected client for `config.redis_url`, or None (no URL, or unreachable).

    Unreachable with `config.redis_required`: raises DeploymentError. Unreachable otherwise:
    logs one warning naming the fallback (filesystem or in-memory results, diskcache jobs).
    """
    url = config.redis_url
    if not url:
        return None
    import redis

    safe = redact_url(url)
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            health_check_interval=30,
        )
        client.ping()
    except (redis.RedisError, OSError, ValueError) as err:
        reason = f"{type(err).__name__}: {err}"
        if config.redis_required:
            raise DeploymentError(
                f"Redis at {safe} cannot be reached ({reason}) and SVDSCOPE_REDIS_REQUIRED is "
                "set, so svdscope will not start; start Redis (or fix SVDSCOPE_REDIS_URL)."
            ) from err
        where = f"the filesystem cache in {config.cache_dir}" if config.cache_dir else "memory"
        log.warning(
            "svdscope: Redis at %s is unreachable (%s); falling back to results in %s and "
            "background jobs in local processes (diskcache). Set SVDSCOPE_REDIS_REQUIRED=1 "
            "to refuse to start instead.",
            safe,
            reason,
            where,
        )
        return None
    log.info("svdscope: results and background jobs use Redis at %s", safe)
    return client


def redis_result_backend(client: redis.Redis) -> Any:
    """The cachelib RedisCache that holds analysis results and cancel flags."""
    from cachelib import RedisCache

    return RedisCache(host=client, key_prefix=REDIS_KEY_PREFIX, default_timeout=REDIS_RESULT_TTL_S)


class ResultCaches:
    """The result caches of one process (see the module docstring)."""

    def __init__(self, config: AppConfig) -> None:
        backend: BaseCache
        if config.cache_dir is None:
            backend = SimpleCache(threshold=config.cache_threshold)
        else:
            backend = FileSystemCache(str(config.cache_dir), threshold=config.cache_threshold)
        self.cache = sc.cache.ResultCache(backend)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if config.cache_dir is None:
            self._scratch = tempfile.TemporaryDirectory(
                prefix="svdscope-", ignore_cleanup_errors=True
            )
            scratch = Path(self._scratch.name)
            self.shared_cache = sc.cache.ResultCache(
                FileSystemCache(str(scratch / "results"), threshold=config.cache_threshold)
            )
            self.jobs_dir = scratch / "jobs"
        else:
            self.shared_cache = self.cache
            self.jobs_dir = config.cache_dir / "jobs"
        # A lab deployment: results and cancel flags in Redis, seen by every gunicorn and
        # Celery worker; None when not configured or unreachable (connect_redis logs why).
        self.redis: Any = connect_redis(config)
        self.redis_url = config.redis_url if self.redis is not None else None
        if self.redis is not None:
            self.cache = sc.cache.ResultCache(
                redis_result_backend(self.redis), timeout=REDIS_RESULT_TTL_S
            )
            self.shared_cache = self.cache
