"""Dashboard factory.

    from app.main import AppConfig, create_app
    app = create_app(AppConfig(models=["deernet", "path/to/model.safetensors"]))
    app.run(host="127.0.0.1", port=8050)

For gunicorn, `app.main:server` builds a default app (configured from the environment,
see `AppConfig.from_env`) on first access; importing this module alone builds nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import dash
import torch

from app.config import AppConfig
from app.services import Services
from app.views.layout import VIEWS, build_layout
from app.web.deploy import (
    HEALTH_ROUTE,
    background_manager,
    install_basic_auth,
    install_healthz,
    shared_secret,
)
from app.web.uploads import register_upload_routes

__all__ = [
    "ASSETS_DIR",
    "AppConfig",
    "create_app",
    "get_celery",
    "get_services",
]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
UPLOAD_ROUTE = "upload"
DATASET_UPLOAD_ROUTE = "upload-dataset"


def create_app(config: AppConfig | None = None) -> dash.Dash:
    """Build the Dash app (layout, callbacks, upload endpoint) for one configuration.

    Each call has its own `Services` (model registry, caches, upload store), reachable as
    `get_services(app)`. Unknown model names raise `sc.LoadError` here, before serving.
    Background callbacks (the iterative descrambler, the inversion by optimisation) run in
    processes forked by a DiskcacheManager whose queue lives in `services.jobs_dir`, or,
    when `config.redis_url` is reachable, in Celery workers (`svdscope worker`, which builds
    the same app to register the same tasks; `get_celery(app)`). GET /healthz answers "ok";
    `config.basic_auth` puts every other route behind HTTP Basic authentication.
    """
    config = config or AppConfig()
    services = Services(config)
    # Set torch's thread pools up in this process before any job is forked from it: a fork
    # taken while they start up can hang the child (shared/recipes/performance-facts.md).
    torch.ones(2, 2) @ torch.ones(2, 2)
    manager, celery_app = background_manager(services)
    app = dash.Dash(
        __name__,
        title=config.title,
        update_title=None,
        assets_folder=str(ASSETS_DIR),
        suppress_callback_exceptions=False,
        background_callback_manager=manager,
    )
    if services.redis is not None:  # one signing secret for every web/worker process
        app.server.secret_key = shared_secret(services.redis)
    # one request, one resolution of each model (app/services/registry.py, OpenedModel)
    app.server.before_request(services.registry.begin_request)
    app.server.teardown_request(services.registry.end_request)
    prefix = app.config.routes_pathname_prefix
    install_healthz(app.server, prefix + HEALTH_ROUTE)
    if config.basic_auth:
        install_basic_auth(app.server, config.basic_auth, exempt=(prefix + HEALTH_ROUTE,))
    register_upload_routes(
        app.server,
        services,
        route=prefix + UPLOAD_ROUTE,
        dataset_route=prefix + DATASET_UPLOAD_ROUTE,
    )
    app.server.extensions["svdscope"] = services
    app.server.extensions["svdscope_celery"] = celery_app
    app.layout = build_layout(
        title=config.title,
        max_upload_bytes=config.max_upload_bytes,
        upload_url=app.config.requests_pathname_prefix + UPLOAD_ROUTE,
        dataset_upload_url=app.config.requests_pathname_prefix + DATASET_UPLOAD_ROUTE,
        device=device_label(),
    )
    for view in VIEWS:  # the router, the tabs, the export bar, the tours
        view.register(app, services)
    return app


def device_label() -> str:
    """Where svdcore computes, for the page header: "computes on the CPU (2 threads)" or
    "computes on cuda:0 (NVIDIA H100 …)"; the reason when SVDSCOPE_DEVICE is unusable."""
    import svdcore as sc

    try:
        device = sc.default_device()
    except sc.SvdscopeError as err:
        return f"device problem: {err}"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"computes on cuda:{index} ({torch.cuda.get_device_name(index)})"
    threads = torch.get_num_threads()
    return f"computes on the CPU ({threads} thread{'' if threads == 1 else 's'})"


def get_services(app: dash.Dash) -> Services:
    """The `Services` instance that `create_app` attached to `app`."""
    return app.server.extensions["svdscope"]


def get_celery(app: dash.Dash) -> Any:
    """The Celery app behind `app`'s background callbacks, or None (DiskcacheManager)."""
    return app.server.extensions.get("svdscope_celery")


_default: dict[str, dash.Dash] = {}
_default_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """`app.main.app` / `app.main.server`: a default app, created on first access."""
    if name not in ("app", "server"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _default_lock:
        if "app" not in _default:
            _default["app"] = create_app(AppConfig.from_env())
    return _default["app"] if name == "app" else _default["app"].server
