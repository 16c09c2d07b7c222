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
from typing import TYPE_CHECKING, Any

import flask

from app.config import parse_credentials
from app.services.caches import REDIS_CONNECT_TIMEOUT_S

if TYPE_CHECKING:
    import celery
    import redis


__all__ = [
    "HEALTH_ROUTE",
    "install_basic_auth",
    "install_healthz",
    "make_celery",
    "shared_secret",
]

log = logging.getLogger(__name__)

HEALTH_ROUTE = "healthz"
SECRET_KEY_NAME = "svdscope:flask-secret-key"  # no expiry: outlives every result
CELERY_NODE = "svdscope"  # worker node names: svdscope@<hostname>


# --------------------------------------------------------------------------- Redis
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
    (app/web/job_manager.py)."""
    from app.web.job_manager import WatchedCeleryManager, WatchedDiskcacheManager

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
