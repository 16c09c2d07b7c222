"""The lab deployment inside the app: Redis results shared between processes, the fallback
(or refusal) when Redis is down, /healthz, HTTP Basic authentication, the settings read
from the environment and the `svdscope worker` command's errors. A real redis-server runs
for these tests (conftest.py)."""

from __future__ import annotations

import logging

import dash
import pytest
import redis
import torch
from deploy_helpers import free_port
from safetensors.torch import save_file
from werkzeug.security import generate_password_hash

from app.cli import main as cli_main
from app.config import (
    AppConfig,
    DeploymentError,
    default_cache_dir,
    deploy_options_from_env,
    parse_credentials,
    redact_url,
)
from app.main import create_app, get_celery, get_services
from app.services import Services


@pytest.fixture
def toy_path(tmp_path):
    path = tmp_path / "toy.safetensors"
    save_file({"fc1.weight": torch.randn(24, 16)}, str(path))  # fresh contents, fresh keys
    return path


def _config(toy_path, tmp_path, **options) -> AppConfig:
    return AppConfig(models=[str(toy_path)], upload_dir=tmp_path / "up", **options)


def _dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


# --------------------------------------------------------------------------- Redis cache
def test_results_cached_in_redis_are_seen_by_a_second_services(toy_path, tmp_path, redis_url):
    """Two Services on one Redis stand for two gunicorn workers (or a web and a Celery
    worker): what one computed, the other reads, and so are cancel flags."""
    cfg = _config(toy_path, tmp_path, redis_url=redis_url)
    first, second = Services(cfg), Services(cfg)
    assert first.redis_url == redis_url and first.shared_cache is first.cache
    spectrum = first.layers.spectrum("toy", "fc1", "default", None)
    assert first.cache.misses == 1
    again = second.layers.spectrum("toy", "fc1", "default", None)
    assert second.cache.hits == 1 and second.cache.misses == 0
    assert again.summary.condition_number == pytest.approx(spectrum.summary.condition_number)
    keys = redis.Redis.from_url(redis_url).keys("svdscope-cache:*")
    assert len(keys) == 1
    ttl = redis.Redis.from_url(redis_url).ttl(keys[0])
    assert 0 < ttl <= 7 * 24 * 3600  # expiring keys: Redis' volatile-lru may evict them

    first.jobs.request_cancel("session-a", "nonce-1")
    assert second.jobs.cancel_requested("session-a", "nonce-1")
    assert not second.jobs.cancel_requested("session-a", "nonce-2")


def test_a_redis_app_runs_jobs_on_celery_with_one_signing_secret(toy_path, tmp_path, redis_url):
    app = create_app(_config(toy_path, tmp_path, redis_url=redis_url))
    celery_app = get_celery(app)
    assert celery_app is not None and celery_app.conf.broker_url == redis_url
    assert isinstance(app._background_manager, dash.CeleryManager)
    assert app.server.test_client().get("/healthz").data == b"ok"
    # every process signs Dash's job handles with one secret, which never expires
    other = create_app(_config(toy_path, tmp_path, redis_url=redis_url))
    assert app.server.secret_key and other.server.secret_key == app.server.secret_key
    assert app._get_signing_secret() == other._get_signing_secret()
    assert redis.Redis.from_url(redis_url).ttl("svdscope:flask-secret-key") == -1


def test_unreachable_redis_falls_back_with_one_clear_log_line(toy_path, tmp_path, caplog):
    url = _dead_redis_url()
    with caplog.at_level(logging.WARNING, logger="app.services.caches"):
        app = create_app(_config(toy_path, tmp_path, redis_url=url))
    services = get_services(app)
    assert services.redis is None and services.redis_url is None
    assert get_celery(app) is None
    assert isinstance(app._background_manager, dash.DiskcacheManager)
    lines = [r.getMessage() for r in caplog.records if r.name == "app.services.caches"]
    assert len(lines) == 1
    assert f"Redis at {url} is unreachable" in lines[0]
    assert "falling back to results in memory" in lines[0] and "diskcache" in lines[0]
    assert services.layers.spectrum("toy", "fc1", "default", None).shape == (24, 16)  # still serves


def test_unreachable_redis_refuses_to_start_when_required(toy_path, tmp_path):
    url = _dead_redis_url()
    with pytest.raises(DeploymentError, match=r"cannot be reached .* SVDSCOPE_REDIS_REQUIRED"):
        create_app(_config(toy_path, tmp_path, redis_url=url, redis_required=True))


def test_serve_and_worker_refuse_to_start_without_their_redis(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SVDSCOPE_REDIS_URL", f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("SVDSCOPE_REDIS_REQUIRED", "1")
    monkeypatch.setenv("SVDSCOPE_UPLOAD_DIR", str(tmp_path / "up"))
    monkeypatch.setenv("SVDSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    assert cli_main(["serve", "--no-disk-cache", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("svdscope: error: Redis at redis://:***@127.0.0.1:")
    assert "hunter2" not in err and "Traceback" not in err

    monkeypatch.delenv("SVDSCOPE_REDIS_REQUIRED")  # a worker needs its Redis regardless
    assert cli_main(["worker"]) == 2
    assert "cannot be reached" in capsys.readouterr().err

    monkeypatch.delenv("SVDSCOPE_REDIS_URL")
    assert cli_main(["worker"]) == 2
    assert "set SVDSCOPE_REDIS_URL" in capsys.readouterr().err


# --------------------------------------------------------------------------- settings
def test_config_from_env_reads_the_deployment_settings(tmp_path):
    secret = tmp_path / "auth"
    secret.write_text("bob:pw2\n")
    cfg = AppConfig.from_env(
        {
            "SVDSCOPE_REDIS_URL": "redis://redis:6379/0",
            "SVDSCOPE_REDIS_REQUIRED": "1",
            "SVDSCOPE_BASIC_AUTH": "ann:pw1",
            "SVDSCOPE_BASIC_AUTH_FILE": str(secret),
            "SVDSCOPE_UPLOAD_DIR": str(tmp_path),
        }
    )
    assert cfg.redis_url == "redis://redis:6379/0" and cfg.redis_required
    assert parse_credentials(cfg.basic_auth) == {"ann": "pw1", "bob": "pw2"}
    plain = AppConfig.from_env({"SVDSCOPE_UPLOAD_DIR": str(tmp_path), "SVDSCOPE_BASIC_AUTH": ""})
    assert plain.redis_url is None and not plain.redis_required and plain.basic_auth is None
    # gunicorn workers share one filesystem cache by default, not one each in memory
    assert plain.cache_dir == default_cache_dir()
    with pytest.raises(DeploymentError, match="SVDSCOPE_BASIC_AUTH_FILE"):
        deploy_options_from_env({"SVDSCOPE_BASIC_AUTH_FILE": str(tmp_path / "missing")})
    with pytest.raises(DeploymentError, match="no password"):
        deploy_options_from_env({"SVDSCOPE_BASIC_AUTH": "ann"})


def test_redact_url_hides_passwords_only():
    assert redact_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("redis://user:s3cret@host/1") == "redis://user:***@host/1"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"


# --------------------------------------------------------------------------- HTTP
def test_healthz_answers_ok_without_credentials(toy_path, tmp_path):
    client = create_app(_config(toy_path, tmp_path)).server.test_client()
    res = client.get("/healthz")
    assert res.status_code == 200 and res.data == b"ok" and res.mimetype == "text/plain"


def test_basic_auth_protects_every_route_but_healthz(toy_path, tmp_path):
    hashed = generate_password_hash("s3cret")
    app = create_app(_config(toy_path, tmp_path, basic_auth=f"ann:open sesame\nbob:{hashed}"))
    client = app.server.test_client()
    for path in ("/", "/_dash-layout", "/_dash-dependencies", "/assets/style.css"):
        res = client.get(path)
        assert res.status_code == 401, path
        assert res.headers["WWW-Authenticate"].startswith('Basic realm="svdscope"')
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.post("/upload", data=b"x").status_code == 401
    assert client.get("/", auth=("ann", "wrong")).status_code == 401
    assert client.get("/", auth=("eve", "open sesame")).status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/", auth=("ann", "open sesame")).status_code == 200
    assert client.get("/_dash-layout", auth=("bob", "s3cret")).status_code == 200
    assert client.get("/", auth=("bob", hashed)).status_code == 401  # the hash is no password
