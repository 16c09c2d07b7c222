"""gunicorn settings of the lab image (Dockerfile):

    gunicorn --config python:app.gunicorn_conf app.main:server

From the environment: SVDSCOPE_HOST (default 0.0.0.0) and SVDSCOPE_PORT (8050) to bind,
SVDSCOPE_WEB_WORKERS (or gunicorn's WEB_CONCURRENCY; default 2) worker processes with
SVDSCOPE_WEB_THREADS (default 4) threads each, SVDSCOPE_WEB_TIMEOUT (120 s) per request.
Each worker builds its own app (`app.main:server` is lazy); they share results, cancel flags
and the job queue through the filesystem cache or Redis (app/web/deploy.py).
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = f"{os.environ.get('SVDSCOPE_HOST', '0.0.0.0')}:{_int('SVDSCOPE_PORT', 8050)}"
workers = _int("SVDSCOPE_WEB_WORKERS", _int("WEB_CONCURRENCY", 2))
threads = _int("SVDSCOPE_WEB_THREADS", 4)
worker_class = "gthread"
timeout = _int("SVDSCOPE_WEB_TIMEOUT", 120)
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("SVDSCOPE_LOG_LEVEL", "info").lower()
# gunicorn's worker heartbeat files: in memory, as its docs advise inside containers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# No gunicornc control socket: nothing uses it, and its default path ($HOME/.gunicorn) is
# shared by every gunicorn of one user (two deployments on one host would collide).
control_socket_disable = True
