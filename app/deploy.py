"""The shared-deployment side of the app: Redis, Celery, HTTP Basic authentication, /healthz.

One laptop needs none of this: results go to memory or a filesystem cache and background
jobs to processes forked by a DiskcacheManager. A lab deployment (Dockerfile,
docker-compose.yml) sets ``SVDSCOPE_REDIS_URL``: analysis results, cancel flags and the
background-job queue then live in that Redis, so every gunicorn worker and every Celery
worker (``svdscope worker``) on any host sees the same state. Settings from the environment:

    SVDSCOPE_REDIS_URL         redis://[:password@]host:port/db  (unset: filesystem + diskcache)
    SVDSCOPE_REDIS_REQUIRED=1  refuse to start when that Redis cannot be reached (otherwise:
                               one warning in the log, then the filesystem/diskcache fallback)
    SVDSCOPE_BASIC_AUTH        "user:password" (several pairs: one per line or comma-separated)
    SVDSCOPE_BASIC_AUTH_FILE   a file holding such lines (e.g. a Docker secret)
    SVDSCOPE_UPLOAD_TTL        seconds an upload is kept (default 86400; 0 or "none": kept)

A password may also be a werkzeug hash (``scrypt:...`` / ``pbkdf2:...``, from
``werkzeug.security.generate_password_hash``).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import flask

from svdcore.exceptions import SvdscopeError

if TYPE_CHECKING:
    import celery
    import redis

    from app.config import AppConfig

__all__ = [
    "HEALTH_ROUTE",
    "REDIS_RESULT_TTL_S",
    "DeploymentError",
    "connect_redis",
    "deploy_options_from_env",
    "install_basic_auth",
    "install_healthz",
    "make_celery",
    "parse_credentials",
    "redact_url",
    "redis_result_backend",
    "shared_secret",
    "truthy",
    "upload_ttl_from_env",
]

log = logging.getLogger(__name__)

HEALTH_ROUTE = "healthz"
REDIS_CONNECT_TIMEOUT_S = 3.0
REDIS_SOCKET_TIMEOUT_S = 60.0  # large results (a 4096^2 SVD is ~130 MB) take a while to move
# Results kept in Redis expire after a week, so that Redis' `volatile-lru` policy (see
# docker-compose.yml) may evict them under memory pressure while leaving Celery's queues alone.
REDIS_RESULT_TTL_S = 7 * 24 * 3600
REDIS_KEY_PREFIX = "svdscope-cache:"
SECRET_KEY_NAME = "svdscope:flask-secret-key"  # no expiry: outlives every result
CELERY_NODE = "svdscope"  # worker node names: svdscope@<hostname>


class DeploymentError(SvdscopeError):
    """A deployment setting that prevents the app from starting (message says which)."""


def truthy(value: str | None) -> bool:
    """ "1", "true", "yes", "on" (any case) -> True; anything else, or None -> False."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***, for log lines and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))


def upload_ttl_from_env(value: str) -> float | None:
    """SVDSCOPE_UPLOAD_TTL -> seconds (float), None for "0" / "none" / "never"."""
    text = value.strip().lower()
    if text in ("0", "none", "never", "off"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise DeploymentError(
            f"SVDSCOPE_UPLOAD_TTL must be a number of seconds (e.g. 86400), or 0 to keep "
            f"uploads; got {value!r}."
        )
    return seconds


def deploy_options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """AppConfig keyword options from SVDSCOPE_REDIS_URL, SVDSCOPE_REDIS_REQUIRED,
    SVDSCOPE_BASIC_AUTH, SVDSCOPE_BASIC_AUTH_FILE and SVDSCOPE_UPLOAD_TTL (unset ones are
    left out)."""
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    if env.get("SVDSCOPE_UPLOAD_TTL", "").strip():
        options["upload_ttl_s"] = upload_ttl_from_env(env["SVDSCOPE_UPLOAD_TTL"])
    if env.get("SVDSCOPE_REDIS_URL", "").strip():
        options["redis_url"] = env["SVDSCOPE_REDIS_URL"].strip()
    if truthy(env.get("SVDSCOPE_REDIS_REQUIRED")):
        options["redis_required"] = True
    auth = env.get("SVDSCOPE_BASIC_AUTH", "").strip()
    auth_file = env.get("SVDSCOPE_BASIC_AUTH_FILE", "").strip()
    if auth_file:
        try:
            auth = "\n".join(filter(None, (auth, Path(auth_file).read_text().strip())))
        except OSError as err:
            raise DeploymentError(
                f"SVDSCOPE_BASIC_AUTH_FILE names {auth_file!r}, which cannot be read "
                f"({err.strerror or err}); fix the path or unset the variable."
            ) from err
    if auth:
        parse_credentials(auth)  # fail at start-up, not at the first request
        options["basic_auth"] = auth
    return options


# --------------------------------------------------------------------------- Redis
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


def shared_secret(client: redis.Redis) -> str:
    """One random secret for every process on this Redis, kept without expiry.

    It becomes the Flask `secret_key`, which Dash uses to sign background-job handles.
    Dash's own fallback keeps its secret in the Celery result backend, where keys expire
    after `result_expires`: a worker started later would then sign with another secret
    than the workers started before it, and their pages' jobs would be lost.
    """
    import secrets

    client.set(SECRET_KEY_NAME, secrets.token_urlsafe(48), nx=True)
    value = client.get(SECRET_KEY_NAME)
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- Celery
def make_celery(url: str) -> celery.Celery:
    """A Celery app with Redis `url` as broker and result backend (Dash's CeleryManager
    keeps progress and results in that backend)."""
    from celery import Celery

    app = Celery("svdscope", broker=url, backend=url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_track_started=True,
        worker_prefetch_multiplier=1,  # jobs are long: one at a time per pool process
        broker_connection_retry_on_startup=True,
        broker_transport_options={"socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S},
        result_expires=24 * 3600,
        worker_hijack_root_logger=False,
    )
    return app


def background_manager(services: Any) -> tuple[Any, celery.Celery | None]:
    """The Dash background-callback manager for `services`: a CeleryManager on its Redis
    (with the Celery app, which `svdscope worker` runs), else a DiskcacheManager in
    `services.jobs_dir` (and None); both report a job whose process died
    (app/job_manager.py)."""
    from app.job_manager import WatchedCeleryManager, WatchedDiskcacheManager

    if services.redis_url is not None:
        celery_app = make_celery(services.redis_url)
        return WatchedCeleryManager(celery_app), celery_app
    import diskcache

    services.jobs_dir.mkdir(parents=True, exist_ok=True)
    return WatchedDiskcacheManager(diskcache.Cache(str(services.jobs_dir))), None


# --------------------------------------------------------------------------- HTTP
def install_healthz(server: flask.Flask, route: str) -> None:
    """GET `route` -> 200 "ok" (text/plain): a cheap liveness probe (Docker HEALTHCHECK)."""

    def healthz() -> flask.Response:
        return flask.Response("ok", mimetype="text/plain")

    server.add_url_rule(route, "svdscope_healthz", healthz, methods=["GET", "HEAD"])


def parse_credentials(text: str) -> dict[str, str]:
    """ "user:password" pairs (one per line, or comma-separated) -> {user: password}."""
    found: dict[str, str] = {}
    for item in text.replace(",", "\n").splitlines():
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise DeploymentError(
                "SVDSCOPE_BASIC_AUTH must hold user:password pairs (one per line); "
                f"one entry has {'no password' if user else 'no user name'}."
            )
        found[user] = password
    if not found:
        raise DeploymentError("SVDSCOPE_BASIC_AUTH is set but names no user:password pair.")
    return found


def _password_ok(stored: str, given: str) -> bool:
    if stored.startswith(("scrypt:", "pbkdf2:")):
        from werkzeug.security import check_password_hash

        return check_password_hash(stored, given)
    return hmac.compare_digest(stored.encode(), given.encode())


def install_basic_auth(server: flask.Flask, credentials: str, *, exempt: tuple[str, ...]) -> None:
    """Ask for HTTP Basic credentials (`credentials`: "user:password" lines) on every route
    of `server` except the paths in `exempt` (the health probe)."""
    users = parse_credentials(credentials)

    def check() -> flask.Response | None:
        if flask.request.path in exempt:
            return None
        auth = flask.request.authorization
        if auth is not None and auth.type == "basic":
            stored = users.get(auth.username or "")
            if stored is not None and _password_ok(stored, auth.password or ""):
                return None
        return flask.Response(
            "svdscope: this deployment needs a user name and password.\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Basic realm="svdscope", charset="UTF-8"'},
        )

    # first in line: nothing else (session cookies, uploads, Dash) runs for a refused request
    server.before_request_funcs.setdefault(None, []).insert(0, check)
