"""Upload endpoint and store: streaming size limit, per-session isolation, safe names."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from app.config import AppConfig
from app.main import create_app, get_services
from app.storage.session import SESSION_COOKIE
from app.storage.uploads import UploadError, UploadStore, allowed_suffix, display_name

GOOD_SESSION = "A" * 43


def _model_bytes() -> bytes:
    return safetensors_bytes({"fc1.weight": torch.randn(16, 8), "fc2.weight": torch.randn(4, 16)})


@pytest.fixture
def app_and_dir(tmp_path):
    upload_dir = tmp_path / "uploads"
    app = create_app(AppConfig(models=[], upload_dir=upload_dir, max_upload_bytes=64 * 1024))
    return app, upload_dir


def _post(client, data: bytes, name: str, headers_extra: dict | None = None):
    headers = {"X-Filename": name, "Content-Type": "application/octet-stream"}
    return client.post("/upload", data=data, headers={**headers, **(headers_extra or {})})


def _session_of(client) -> str:
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return cookie.value


def test_upload_opens_the_model_and_stores_it_under_a_random_name(app_and_dir):
    app, upload_dir = app_and_dir
    client = app.server.test_client()
    res = _post(client, _model_bytes(), "my%20model.safetensors")
    assert res.status_code == 200, res.json
    assert res.json["ok"] and res.json["name"] == "my model.safetensors"
    session = _session_of(client)
    stored = sorted(p.name for p in (upload_dir / session).iterdir())
    assert len(stored) == 2  # <id>.safetensors + <id>.meta
    file_id = res.json["model_id"].removeprefix("upload-")
    assert stored == [f"{file_id}.meta", f"{file_id}.safetensors"]
    services = get_services(app)
    assert [m.id for m in services.registry.models(session)] == [res.json["model_id"]]
    assert [info.name for info in services.registry.layers(res.json["model_id"], session)] == [
        "fc1",
        "fc2",
    ]


def test_sessions_see_only_their_own_uploads(app_and_dir):
    app, _ = app_and_dir
    alice, bob = app.server.test_client(), app.server.test_client()
    model_id = _post(alice, _model_bytes(), "a.safetensors").json["model_id"]
    bob.get("/")  # bob gets his own session cookie from the page
    a, b = _session_of(alice), _session_of(bob)
    assert a != b
    services = get_services(app)
    assert [m.id for m in services.registry.models(b)] == []
    with pytest.raises(Exception, match="not available in this browser session"):
        services.registry.network(model_id, b)
    assert services.registry.network(model_id, a) is not None


def test_size_limit_is_enforced_before_reading_a_declared_large_body(app_and_dir):
    app, upload_dir = app_and_dir
    client = app.server.test_client()
    res = _post(client, b"x" * (64 * 1024 + 1), "big.safetensors")
    assert res.status_code == 413
    assert "larger than the upload limit of 64.0 KiB" in res.json["message"]
    assert not any(upload_dir.rglob("*.safetensors"))


class CountingStream(io.RawIOBase):
    """A body of `total` bytes that records how much of it was read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        size = 1 << 16 if size is None or size < 0 else size
        size = min(size, self.total - self.read_bytes)
        self.read_bytes += size
        return b"\0" * size


def test_size_limit_is_enforced_while_streaming_without_content_length(tmp_path):
    store = UploadStore(tmp_path, max_bytes=3 * 1024 * 1024)
    body = CountingStream(total=12 * 1024 * 1024)  # 4x the limit, no Content-Length
    with pytest.raises(UploadError) as err:
        store.save_stream(GOOD_SESSION, "huge.pt", body, content_length=None)
    assert err.value.status == 413
    # stopped within one chunk of the limit, and nothing is left on disk
    assert body.read_bytes <= 3 * 1024 * 1024 + (1 << 20)
    assert list((tmp_path / GOOD_SESSION).iterdir()) == []


def test_user_file_names_never_become_paths(app_and_dir, tmp_path):
    app, upload_dir = app_and_dir
    client = app.server.test_client()
    res = _post(client, b"root:x:0:0", "../../etc/passwd")
    assert res.status_code == 415 and "not a supported model file" in res.json["message"]
    res = _post(client, _model_bytes(), "..%2F..%2Fevil.safetensors")
    assert res.status_code == 200
    assert res.json["name"] == "evil.safetensors"  # display text only
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(upload_dir in p.parents for p in files)
    assert not any("evil" in p.name or "passwd" in p.name for p in files)
    assert display_name("..\\..\\win.ini\x00.pt") == "win.ini.pt"
    assert allowed_suffix("model.SAFETENSORS") == ".safetensors"
    assert allowed_suffix(".pt") is None and allowed_suffix("x.exe") is None


def test_forged_session_cookie_is_replaced_not_used_as_a_folder(app_and_dir, tmp_path):
    app, upload_dir = app_and_dir
    client = app.server.test_client()
    client.set_cookie(SESSION_COOKIE, "../../escape")
    res = _post(client, _model_bytes(), "m.safetensors")
    assert res.status_code == 200
    session = _session_of(client)
    assert session != "../../escape" and (upload_dir / session).is_dir()
    assert not (tmp_path / "escape").exists()
    with pytest.raises(UploadError):
        UploadStore(tmp_path, max_bytes=10).session_dir("../x")


def test_pickle_with_code_is_refused_with_a_message_and_never_runs(app_and_dir, tmp_path):
    app, upload_dir = app_and_dir
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    buf = io.BytesIO()
    torch.save({"fc.weight": torch.randn(2, 2), "x": Exploit()}, buf)
    client = app.server.test_client()
    res = _post(client, buf.getvalue(), "evil.pt")
    assert res.status_code == 422
    message = res.json["message"]
    assert "evil.pt" in message and "Traceback" not in message
    assert not marker.exists()
    assert not any(upload_dir.rglob("*.pt"))  # refused files are deleted
    # the same exploit as a bare pickle
    res = _post(client, pickle.dumps(Exploit(), protocol=2), "evil2.pth")
    assert res.status_code == 422 and not marker.exists()


def test_broken_files_get_a_clear_message(app_and_dir):
    app, _ = app_and_dir
    client = app.server.test_client()
    res = _post(client, b"this is not a model", "broken.safetensors")
    assert res.status_code == 422
    assert "broken.safetensors" in res.json["message"]
    assert not any(ch in res.json["message"] for ch in ("/tmp", "Traceback"))
    assert _post(client, b"", "empty.safetensors").status_code == 400
    res = client.post("/upload", data={"file": (io.BytesIO(b"x"), "a.pt")})
    assert res.status_code == 415  # multipart forms are not accepted


def test_uploads_per_session_are_capped(tmp_path):
    app = create_app(
        AppConfig(
            models=[], upload_dir=tmp_path, max_upload_bytes=1 << 20, max_uploads_per_session=2
        )
    )
    client = app.server.test_client()
    assert _post(client, _model_bytes(), "a.safetensors").status_code == 200
    assert _post(client, _model_bytes(), "b.safetensors").status_code == 200
    res = _post(client, _model_bytes(), "c.safetensors")
    assert res.status_code == 429 and "already holds 2" in res.json["message"]


def test_the_page_client_reads_failures_from_the_body(app_and_dir):
    app, _ = app_and_dir
    client = app.server.test_client()
    res = _post(client, b"garbage", "x.safetensors", headers_extra={"X-Svdscope-Client": "page"})
    assert res.status_code == 200  # no 4xx for the browser console to report
    assert res.json["ok"] is False and res.json["status"] == 422 and res.json["message"]
