"""Hostile uploads over HTTP (Flask test client) and session isolation (SECURITY.md):
pickles that would run code, path-traversal names, sessions that cannot see, open or fetch
each other's files and results, unguessable ids, uploads that expire, a full disk, broken
and odd models, and a server that keeps serving everyone else throughout."""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import re
import shlex
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

import svdcore as sc
from app.config import AppConfig, DeploymentError, deploy_options_from_env, upload_ttl_from_env
from app.main import create_app, get_services
from app.services.layers import TABLE_SUMMARY_MAX_LAYERS
from app.storage.session import SESSION_COOKIE
from app.storage.uploads import UploadError, UploadStore, display_name
from app.views.router import resolve_state

LIMIT = 8 * 1024 * 1024
_STORED = re.compile(r"^[0-9a-f]{32}\.(safetensors|pt2|pth|pt|bin|onnx|json|npy|npz|csv|zip|meta)$")


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture
def app(tmp_path):
    return create_app(
        AppConfig(models=["digits"], upload_dir=tmp_path / "up", max_upload_bytes=LIMIT)
    )


def _post(client, data: bytes, name: str, *, dataset: bool = False, page: bool = False):
    headers = {"X-Filename": quote(name), "Content-Type": "application/octet-stream"}
    if page:
        headers["X-Svdscope-Client"] = "page"
    return client.post("/upload-dataset" if dataset else "/upload", data=data, headers=headers)


def _session(client) -> str:
    return client.get_cookie(SESSION_COOKIE).value


# The second layer's name has letters no hex id or session token can hold, so a test can ask
# that it never shows in another session's reply (``fc2`` once matched a random upload id).
PRIVATE_LAYER = "private_head"


def _model() -> bytes:
    return safetensors_bytes(
        {"fc1.weight": torch.randn(8, 4), f"{PRIVATE_LAYER}.weight": torch.randn(3, 8)}
    )


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _torch_bytes(obj, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def _npy_bytes(array, **kwargs) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, **kwargs)
    return buf.getvalue()


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _pt2_with_pickled_weight(marker: Path) -> bytes:
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    src = io.BytesIO()
    torch.export.save(torch.export.export(module.eval(), (torch.randn(2, 3),)), src)
    out = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                config["config"]["0.weight"]["use_pickle"] = True
                data = json.dumps(config).encode()
            elif info.filename.endswith("weights/weight_0"):
                data = _torch_bytes(Payload(marker))
            zout.writestr(info.filename, data)
    return out.getvalue()


# ----------------------------------------------------------------------------- pickles
def test_pickles_with_code_are_refused_over_http_and_never_run(app, tmp_path):
    marker = tmp_path / "PWNED"
    evil = Payload(marker)
    models = {
        "evil.pt": _torch_bytes({"fc.weight": torch.randn(2, 2), "x": evil}),
        "evil.pth": _torch_bytes({"x": evil}, _use_new_zipfile_serialization=False),
        "evil.bin": pickle.dumps(evil),
        "evil.pt2": _pt2_with_pickled_weight(marker),
    }
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("cats/evil.pkl", pickle.dumps(evil))
    datasets = {
        "evil.pt": _torch_bytes({"x": torch.zeros(2, 64), "y": evil}),
        "evil.npy": _npy_bytes(np.array([evil], dtype=object), allow_pickle=True),
        "evil.npz": _npz_bytes(x=np.array([evil], dtype=object)),
        "evil.zip": zipped.getvalue(),
    }
    alice, bob = app.server.test_client(), app.server.test_client()
    for name, body, dataset in [(n, b, False) for n, b in models.items()] + [
        (n, b, True) for n, b in datasets.items()
    ]:
        res = _post(alice, body, name, dataset=dataset)
        assert res.status_code == 422, (name, res.json)
        message = res.json["message"]
        assert name in message and "Traceback" not in message and "/tmp" not in message
        assert any(w in message for w in ("never unpickles", "Python objects", "no PNG or JPEG")), (
            message
        )
        if name.endswith((".pt", ".pth", ".bin")):
            assert "posix.system" in message  # the refused global, named
        assert not marker.exists(), name
        # nothing of it is kept, and everyone else is still served
        assert _files(tmp_path / "up" / _session(alice)) == []
        assert _post(bob, _model(), "fine.safetensors").status_code == 200


# ----------------------------------------------------------------------------- names
HOSTILE_NAMES = [
    "../../x.safetensors",
    "/etc/passwd.safetensors",
    "a\x00b.safetensors",
    "..\\..\\windows\\win.safetensors",
    "x" * 5000 + ".safetensors",
    "\u202egnp.safetensors",  # right-to-left override
    "𝔪𝔬𝔡𝔢𝔩 ✓ 模型.safetensors",
    "a\r\nSet-Cookie: x=1.safetensors",
    "%2e%2e%2f%2e%2e%2fetc.safetensors",
    "CON.safetensors",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_upload_names_never_become_paths(app, tmp_path, name):
    client = app.server.test_client()
    res = _post(client, _model(), name)
    assert res.status_code == 200, res.json
    shown = res.json["name"]
    assert shown == display_name(name) and 0 < len(shown) <= 120
    assert "/" not in shown and "\\" not in shown
    assert not any(ord(c) < 32 or c in "\u202e\u200f" for c in shown)
    session = _session(client)
    for path in _files(tmp_path):
        assert path.is_relative_to(tmp_path / "up" / session), path
        assert _STORED.match(path.name), path.name
    assert res.headers.get_all("Set-Cookie") == [] or all(
        "x=1" not in c for c in res.headers.get_all("Set-Cookie")
    )


# ----------------------------------------------------------------------------- sessions
def test_sessions_cannot_list_open_or_fetch_each_others_uploads(app, tmp_path):
    alice, bob = app.server.test_client(), app.server.test_client()
    model_id = _post(alice, _model(), "alice.safetensors").json["model_id"]
    x = sc.zoo.dataset("digits").x[:10].numpy()
    dataset_id = _post(alice, _npz_bytes(x=x), "alice.npz", dataset=True).json["dataset_id"]
    bob.get("/")
    a, b = _session(alice), _session(bob)
    services = get_services(app)
    # list
    assert [m.id for m in services.registry.models(b)] == ["digits"]
    assert [d.id for d in services.datasets.entries("digits", b)] == ["zoo"]
    # open, through the services and through the page state (a link with alice's ids)
    with pytest.raises(sc.LoadError, match="not available in this browser session"):
        services.registry.network(model_id, b)
    with pytest.raises(sc.LoadError, match="no longer stored for this browser session"):
        services.datasets.open("digits", dataset_id, b)
    state, alerts, _ = resolve_state(services, b, {"model": model_id, "dataset": dataset_id})
    assert state["model"] == "digits" and state["dataset"] == "zoo"
    texts = " ".join(str(alert.children[-1].children) for alert in alerts)
    assert texts.count("not available in this browser session") == 2
    # through a Dash callback of bob's page asking for alice's model
    key = next(k for k in app.callback_map if k.startswith("..graph-weights-heatmap"))
    spec = app.callback_map[key]
    selection = {"model": model_id, "layer": "fc1", "view": "default", "tab": "weights"}
    body = {
        "output": key,
        "outputs": [
            {"id": i, "property": p}
            for i, _, p in (o.partition(".") for o in key[2:-2].split("..."))
        ],
        "inputs": [
            dict(i, value=selection if "selection" in i["id"] else None) for i in spec["inputs"]
        ],
        "state": [dict(s, value=None) for s in spec["state"]],
        "changedPropIds": [f"{spec['inputs'][0]['id']}.{spec['inputs'][0]['property']}"],
    }
    reply = bob.post("/_dash-update-component", json=body)
    assert reply.status_code in (200, 204)
    if reply.status_code == 200:
        assert "not available in this browser session" in reply.get_data(as_text=True)
        assert PRIVATE_LAYER not in reply.get_data(as_text=True)
    # fetch by guessing: no route serves stored files
    stored = next(p for p in _files(tmp_path / "up" / a) if p.suffix == ".safetensors")
    for url in (
        f"/upload/{stored.stem}",
        f"/upload?name={stored.name}",
        f"/up/{a}/{stored.name}",
        f"/assets/..%2f..%2f{stored.name}",
        "/assets/../app/config.py",
        "/_dash-component-suites/dash/../../../../etc/passwd",
    ):
        res = bob.get(url)
        if res.status_code == 200:  # Dash answers unknown paths with the page shell
            assert b"_dash-config" in res.get_data(), url
        else:  # Dash answers an unregistered component path with a bare 500 page
            assert res.status_code in (400, 404, 405, 500), (url, res.status_code)
        assert stored.read_bytes()[:64] not in res.get_data()
    # alice still has both
    assert services.registry.network(model_id, a).layers
    assert services.datasets.open("digits", dataset_id, a).data.x.shape == (10, 64)


def test_ids_are_unguessable(app, tmp_path):
    sessions = set()
    for _ in range(50):
        client = app.server.test_client()
        client.get("/")
        sessions.add(_session(client))
    assert len(sessions) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", s) for s in sessions)  # 32 bytes: 256 bits
    store = UploadStore(tmp_path / "s", max_bytes=1 << 20, max_files=1000)
    ids = {store.save_stream("A" * 43, "m.pt", io.BytesIO(b"x")).file_id for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)  # 16 bytes: 128 bits
    assert store.get("A" * 43, "0" * 32) is None and store.get("A" * 43, "../x") is None


# ----------------------------------------------------------------------------- expiry
def test_uploads_expire_and_the_page_says_so(tmp_path):
    app = create_app(AppConfig(models=["digits"], upload_dir=tmp_path / "up", upload_ttl_s=1))
    client = app.server.test_client()
    model_id = _post(client, _model(), "old model.safetensors").json["model_id"]
    x = sc.zoo.dataset("digits").x[:5].numpy()
    dataset_id = _post(client, _npz_bytes(x=x), "old.npz", dataset=True).json["dataset_id"]
    session = _session(client)
    services = get_services(app)
    assert services.registry.network(model_id, session).layers
    time.sleep(1.2)
    assert [m.id for m in services.registry.models(session)] == ["digits"]
    with pytest.raises(sc.LoadError, match=r"'old model\.safetensors' has expired.*1 s after"):
        services.registry.network(model_id, session)
    with pytest.raises(sc.LoadError, match=r"'old\.npz' has expired"):
        services.datasets.open("digits", dataset_id, session)
    _, alerts, _ = resolve_state(services, session, {"model": model_id, "dataset": dataset_id})
    texts = " ".join(str(alert.children[-1].children) for alert in alerts)
    assert "'old model.safetensors' has expired" in texts and "'old.npz' has expired" in texts
    data = [p for p in _files(tmp_path / "up") if p.suffix != ".meta"]
    assert data == []  # the files themselves are gone
    # another session cannot learn the names from the tombstones
    other = app.server.test_client()
    other.get("/")
    assert services.registry.upload_gone_message(model_id, _session(other)) is None


def test_the_sweep_deletes_expired_files_of_every_session(tmp_path):
    store = UploadStore(tmp_path, max_bytes=1 << 20, ttl_s=60)
    sessions = ["A" * 43, "B" * 43, "C" * 43]
    for s in sessions:
        store.save_stream(s, "m.pt", io.BytesIO(b"weights"))
    (tmp_path / sessions[0] / f"{'f' * 32}.part").write_bytes(b"left by a crash")
    os.utime(tmp_path / sessions[0] / f"{'f' * 32}.part", (time.time() - 120,) * 2)
    assert store.sweep() == 1  # only the stray .part is old enough
    later = time.time() + 61
    assert store.sweep(now=later) == 3  # the data of every session
    assert [p for p in _files(tmp_path) if p.suffix != ".meta"] == []
    assert store.sweep(now=later + 61) == 3  # then the tombstones, and the empty folders
    assert list(tmp_path.iterdir()) == []


def test_the_time_to_live_is_configurable():
    assert upload_ttl_from_env("3600") == 3600.0
    assert upload_ttl_from_env("0") is None and upload_ttl_from_env("none") is None
    assert deploy_options_from_env({"SVDSCOPE_UPLOAD_TTL": "90"}) == {"upload_ttl_s": 90.0}
    with pytest.raises(DeploymentError, match="SVDSCOPE_UPLOAD_TTL must be a number"):
        upload_ttl_from_env("a day")
    with pytest.raises(ValueError, match="upload_ttl_s"):
        AppConfig(upload_ttl_s=-5)
    assert AppConfig().upload_ttl_s == 24 * 3600


# ----------------------------------------------------------------------------- full disk
class _FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes are written."""

    def __init__(self, path, mode, room: int) -> None:
        self._file = open(path, mode)  # noqa: SIM115 - closed by __exit__
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._file.write(data[: self._room])  # a partial file, as a real full disk leaves
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


@pytest.mark.parametrize("where", ["data", "meta"])
def test_a_full_disk_leaves_no_partial_file_and_says_so(app, tmp_path, monkeypatch, where):
    if where == "data":
        monkeypatch.setattr(
            "app.storage.uploads.open", lambda p, m: _FullDisk(p, m, room=1 << 20), raising=False
        )
    else:
        real = Path.write_text

        def full(self, *args, **kwargs):
            if self.suffix == ".meta":
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", full)
    client = app.server.test_client()
    body = os.urandom(3 * 1024 * 1024)
    res = _post(client, body, "big.safetensors")
    assert res.status_code == 507, res.json
    assert "disk is full" in res.json["message"] and "big.safetensors" in res.json["message"]
    assert "nothing of it was kept" in res.json["message"]
    assert _files(tmp_path / "up" / _session(client)) == []  # no .part, no data, no .meta
    res = _post(client, body, "big.npz", dataset=True, page=True)
    assert res.status_code == 200 and res.json["ok"] is False and res.json["status"] == 507
    monkeypatch.undo()
    assert _post(client, _model(), "after.safetensors").status_code == 200  # serving again


def test_other_storage_errors_are_a_500_with_a_sentence(tmp_path, monkeypatch):
    store = UploadStore(tmp_path, max_bytes=1 << 20)
    monkeypatch.setattr(
        "app.storage.uploads.open",
        lambda p, m: (_ for _ in ()).throw(OSError(errno.EACCES, "Permission denied")),
        raising=False,
    )
    with pytest.raises(UploadError) as err:
        store.save_stream("A" * 43, "m.pt", io.BytesIO(b"x"))
    assert err.value.status == 500 and "Permission denied" in err.value.message


# ----------------------------------------------------------------------------- odd models
def test_broken_and_odd_models_get_a_precise_message_and_others_are_served(app, tmp_path):
    client, other = app.server.test_client(), app.server.test_client()
    W = torch.randn(6, 4)
    W[0, 1] = float("nan")
    cases = {
        "cut.safetensors": (_model()[:100], 422, "not a readable safetensors"),
        "bias.safetensors": (
            safetensors_bytes({"b": torch.randn(3), "s": torch.tensor(1.0)}),
            422,
            "none with two or more dimensions",
        ),
        "complex.pt": (
            _torch_bytes({"w": torch.randn(3, 3, dtype=torch.complex64), "ok": torch.randn(2, 2)}),
            200,
            None,
        ),
        "nan.safetensors": (safetensors_bytes({"bad.weight": W}), 200, None),
    }
    services = get_services(app)
    for name, (body, status, words) in cases.items():
        res = _post(client, body, name)
        assert res.status_code == status, (name, res.json)
        if words:
            assert words in res.json["message"] and name in res.json["message"]
        assert _post(other, _model(), "m.safetensors").status_code == 200
    session = _session(client)
    ids = {m.label.removeprefix("⇪ "): m.id for m in services.registry.models(session)}
    rows = {r["name"]: r for r in services.layers.table(ids["complex.pt"], session)}
    assert not rows["w"]["viewable"] and "complex" in rows["w"]["note"]
    nan_id = ids["nan.safetensors"]
    (row,) = services.layers.table(nan_id, session)
    assert "1 NaN" in row["note"]  # the table says so ...
    shown = services.layers.weights(nan_id, "bad", "default", session).matrix
    assert np.isnan(shown[0, 1])  # ... the weights are shown ...
    with pytest.raises(sc.DataError, match=r"contains 1 NaN"):  # ... the spectrum says why not
        services.layers.spectrum(nan_id, "bad", "default", session)


def test_a_model_of_ten_thousand_tiny_tensors_stays_usable(tmp_path, capsys):
    app = create_app(AppConfig(models=[], upload_dir=tmp_path / "up"))
    tensors = {f"blocks.{i}.weight": torch.randn(2, 3) for i in range(10_000)}
    client = app.server.test_client()
    started = time.perf_counter()
    res = _post(client, safetensors_bytes(tensors), "many.safetensors")
    uploaded = time.perf_counter() - started
    assert res.status_code == 200, res.json
    services = get_services(app)
    started = time.perf_counter()
    rows = services.layers.table(res.json["model_id"], _session(client))
    table = time.perf_counter() - started
    assert len(rows) == 10_000
    with_numbers = [r for r in rows if r["cond"]]
    assert len(with_numbers) == TABLE_SUMMARY_MAX_LAYERS  # no per-tensor SVD beyond these
    with capsys.disabled():
        print(f"\n10^4 tensors over HTTP: upload+open {uploaded:.2f} s, layer table {table:.2f} s")


def test_the_session_cookie_is_http_only_and_secure_behind_https(app):
    plain = app.server.test_client().get("/").headers["Set-Cookie"]
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    https = app.server.test_client().get("/", base_url="https://lab.example").headers["Set-Cookie"]
    assert "Secure" in https and "HttpOnly" in https
