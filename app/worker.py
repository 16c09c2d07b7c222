"""The Celery app of a lab deployment: ``celery -A app.worker:celery_app worker`` (or
``svdscope worker``, which runs the same with svdscope's options).

Importing this module builds the dashboard from the environment (`config_from_env`, the
same variables as the web server), because Dash registers one Celery task per background
callback while the callbacks are defined: the worker must define them too, with `Services`
over the same Redis and upload folder. SVDSCOPE_REDIS_URL must be set and reachable.
"""

from __future__ import annotations

from typing import Any

from app.config import AppConfig, DeploymentError
from app.main import create_app, get_celery

__all__ = ["celery_app", "dash_app"]

_config = AppConfig.from_env()
if not _config.redis_url:
    raise DeploymentError(
        "app.worker needs SVDSCOPE_REDIS_URL: the Celery worker takes its jobs from that Redis."
    )
_config.redis_required = True

dash_app = create_app(_config)
celery_app: Any = get_celery(dash_app)
