"""The app factory: layout ids, callbacks, lazy module-level server, cookie, assets."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import dash
import torch
from safetensors.torch import save_file

from app import ids
from app.config import AppConfig
from app.main import create_app, get_services
from app.storage.session import SESSION_COOKIE


def _component_ids(node) -> set[str]:
    found = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        if not isinstance(item, dash.development.base_component.Component):
            continue
        if getattr(item, "id", None):
            found.add(item.id)
        for prop in ("children",):
            child = getattr(item, prop, None)
            if child is not None:
                stack.append(child)
    return found


def _toy(tmp_path):
    path = tmp_path / "toy.safetensors"
    save_file({"fc.weight": torch.randn(3, 4)}, str(path))
    return path


def test_every_id_constant_is_in_the_layout_once(tmp_path):
    app = create_app(AppConfig(models=[str(_toy(tmp_path))], upload_dir=tmp_path / "up"))
    declared = {
        value
        for name, value in vars(ids).items()
        if name.isupper() and isinstance(value, str) and not name.startswith("TAB_")
    }
    jobs = [value for value in vars(ids).values() if isinstance(value, ids.JobIds)]
    assert len(jobs) == 8  # descramble, inversion, spectrum, overview, finetune, 3 of surgery
    declared |= {part for job in jobs for part in dataclasses.astuple(job)}
    present = _component_ids(app.layout)
    # the file inputs are created in the browser by assets/upload.js
    assert declared - present == {ids.INPUT_UPLOAD_FILE, ids.INPUT_DATASET_FILE}
    assert all(value.count("-") >= 2 for value in declared)  # "<type>-<subject>-<param>"
    assert isinstance(get_services(app).config, AppConfig)


def test_index_page_issues_a_session_cookie_and_serves_assets(tmp_path):
    app = create_app(AppConfig(models=[], upload_dir=tmp_path))
    client = app.server.test_client()
    res = client.get("/")
    assert res.status_code == 200
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None and len(cookie.value) >= 40 and cookie.http_only
    for asset in ("/assets/upload.js", "/assets/style.css"):
        assert client.get(asset).status_code == 200


def test_importing_main_builds_nothing_and_server_is_lazy(tmp_path, monkeypatch):
    code = (
        "import app.main as m, sys; "
        "assert 'app' not in m._default; "
        "s = m.server; "
        "assert type(s).__name__ == 'Flask' and m.server is s; print('ok')"
    )
    env = {
        "SVDSCOPE_MODELS": str(_toy(tmp_path)),
        "SVDSCOPE_UPLOAD_DIR": str(tmp_path / "up"),
        "SVDSCOPE_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "ok"
    assert importlib.import_module("app.main").create_app is create_app


def test_header_names_the_compute_device(tmp_path, monkeypatch):
    from app.main import device_label

    monkeypatch.setenv("SVDSCOPE_DEVICE", "cpu")
    assert device_label().startswith("computes on the CPU (")
    monkeypatch.setenv("SVDSCOPE_DEVICE", "tpu-of-dreams")
    assert "SVDSCOPE_DEVICE" in device_label()
    monkeypatch.setenv("SVDSCOPE_DEVICE", "cpu")
    app = create_app(AppConfig(models=["digits"], upload_dir=tmp_path / "up"))
    header = app.layout.children[5]
    assert "computes on the CPU" in str(header)
