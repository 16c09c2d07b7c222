"""Dataset uploads and the dataset services: the streamed endpoint (size limit, sessions,
clear messages, no unpickling), opening with the model's input shape, the picker's list,
URL resolution, and the Descramble view's dataset source on an uploaded dataset."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import svdcore as sc
from app.config import AppConfig
from app.main import create_app, get_services
from app.services import DescrambleOptions
from app.storage.session import SESSION_COOKIE
from app.views.router import encode_search, resolve_state

ROUTE = "/upload-dataset"


@pytest.fixture
def app(tmp_path):
    return create_app(
        AppConfig(models=["digits"], upload_dir=tmp_path / "uploads", max_upload_bytes=64 * 1024)
    )


def _npz(x: np.ndarray, y: np.ndarray | None = None) -> bytes:
    buf = io.BytesIO()
    if y is None:
        np.savez(buf, x=x)
    else:
        np.savez(buf, x=x, y=y)
    return buf.getvalue()


def _post(client, data: bytes, name: str, labels: str | None = None):
    headers = {"X-Filename": name, "Content-Type": "application/octet-stream"}
    if labels:
        headers["X-Labels"] = labels
    return client.post(ROUTE, data=data, headers=headers)


def _session(client) -> str:
    return client.get_cookie(SESSION_COOKIE).value


def _digits(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    ds = sc.zoo.dataset("digits", split="test")
    return ds.x[:n].numpy(), ds.y[:n].numpy()


def test_npz_upload_is_stored_under_a_random_name_and_opened_for_the_model(app, tmp_path):
    client = app.server.test_client()
    x, y = _digits()
    res = _post(client, _npz(x, y), "my%20digits.npz")
    assert res.status_code == 200, res.json
    assert res.json["ok"] and res.json["name"] == "my digits.npz"
    dataset_id = res.json["dataset_id"]
    assert dataset_id.startswith("upload-")
    session = _session(client)
    stored = sorted(p.name for p in (tmp_path / "uploads" / "datasets" / session).iterdir())
    file_id = dataset_id.removeprefix("upload-")
    assert stored == [f"{file_id}.meta", f"{file_id}.npz"]
    services = get_services(app)
    assert [d.id for d in services.datasets.entries("digits", session)] == ["zoo", dataset_id]
    opened = services.datasets.open("digits", dataset_id, session)
    np.testing.assert_array_equal(opened.data.x.numpy(), x)
    assert opened.data.sample_shape == (64,) and opened.data.is_classification
    summary = services.datasets.summary("digits", dataset_id, session)
    assert summary.startswith("40 samples of shape 64, ")
    # the model list is untouched: datasets are not models
    assert [m.id for m in services.registry.models(session)] == ["digits"]


def test_sessions_see_only_their_own_datasets(app):
    alice, bob = app.server.test_client(), app.server.test_client()
    dataset_id = _post(alice, _npz(*_digits()), "a.npz").json["dataset_id"]
    bob.get("/")
    services = get_services(app)
    a, b = _session(alice), _session(bob)
    assert [d.id for d in services.datasets.entries("digits", b)] == ["zoo"]
    with pytest.raises(sc.LoadError, match="no longer stored for this browser session"):
        services.datasets.open("digits", dataset_id, b)
    assert services.datasets.open("digits", dataset_id, a).data.x.shape == (40, 64)
    # a link with alice's dataset opened by bob falls back to the model's own data
    state, alerts, _ = resolve_state(services, b, {"model": "digits", "dataset": dataset_id})
    assert state["dataset"] == "zoo"
    assert "not available in this browser session" in str(alerts[0].children[-1].children)


def test_size_limit_and_unsupported_files(app, tmp_path):
    client = app.server.test_client()
    res = _post(client, b"\0" * (64 * 1024 + 1), "big.npy")
    assert (
        res.status_code == 413
        and "larger than the upload limit of 64.0 KiB" in (res.json["message"])
    )
    assert "smaller sample" in res.json["message"]
    res = _post(client, b"abc", "model.safetensors")
    assert res.status_code == 415 and "not a supported dataset" in res.json["message"]
    assert ".npz" in res.json["message"]
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]


def test_bad_files_get_a_clear_message_and_are_deleted(app, tmp_path):
    client = app.server.test_client()
    for name, body, words in (
        ("broken.npz", b"not a zip at all", "broken.npz"),
        ("broken.npy", b"\x93NUMPY garbage", "broken.npy"),
        ("table.csv", b"a,b\n1,x\n", "not numeric"),
        ("nan.npz", _npz(np.array([[1.0, np.nan]])), "NaN"),
        ("images.zip", b"PK\x05\x06" + b"\0" * 18, "no PNG or JPEG"),
    ):
        res = _post(client, body, name)
        assert res.status_code == 422, (name, res.json)
        message = res.json["message"]
        assert words in message, message
        assert "Traceback" not in message and "/tmp" not in message
    assert not [p for p in (tmp_path / "uploads").rglob("*.*") if p.suffix != ".meta"]
    assert not list((tmp_path / "uploads").rglob("*.meta"))


def test_pt_pickle_with_code_is_refused_and_never_runs(app, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    buf = io.BytesIO()
    torch.save({"x": torch.randn(3, 64), "y": Exploit()}, buf)
    client = app.server.test_client()
    res = _post(client, buf.getvalue(), "evil.pt")
    assert res.status_code == 422
    assert "evil.pt" in res.json["message"] and "never unpickles" in res.json["message"]
    assert not marker.exists()
    res = _post(client, pickle.dumps(Exploit(), protocol=2), "evil2.pth")
    assert res.status_code == 422 and not marker.exists()
    assert not any((tmp_path / "uploads").rglob("*.pt*"))


def test_csv_label_column_comes_from_the_header(app):
    client = app.server.test_client()
    x, y = _digits(12)
    rows = ["label," + ",".join(f"p{i}" for i in range(64))]
    rows += [f"{int(c)}," + ",".join(f"{v:g}" for v in xi) for xi, c in zip(x, y, strict=True)]
    body = "\n".join(rows).encode()
    res = _post(client, body, "digits.csv", labels="label")
    assert res.status_code == 200, res.json
    services = get_services(app)
    session = _session(client)
    opened = services.datasets.open("digits", res.json["dataset_id"], session)
    np.testing.assert_array_equal(opened.data.y.numpy(), y)
    np.testing.assert_allclose(opened.data.x.numpy(), x, rtol=1e-5)
    assert "labels: label" in services.datasets.entries("digits", session)[1].label
    # without the label field every column is a feature: 65 values do not fit 64 inputs
    res = _post(client, body, "digits.csv")
    assert res.status_code == 200
    with pytest.raises(sc.DataError, match=r"\(65,\).*\(64,\)"):
        services.datasets.open("digits", res.json["dataset_id"], session)


def test_a_mismatched_dataset_names_both_shapes(app):
    client = app.server.test_client()
    res = _post(client, _npz(np.zeros((5, 10)), np.arange(5)), "short.npz")
    assert res.status_code == 200  # readable: the shape is checked against each model
    services = get_services(app)
    with pytest.raises(sc.DataError) as err:
        services.datasets.summary("digits", res.json["dataset_id"], _session(client))
    assert "(10,)" in str(err.value) and "(64,)" in str(err.value)


def test_default_dataset_and_url(tmp_path):
    path = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file({"fc.weight": torch.randn(3, 4)}, str(path))
    app = create_app(AppConfig(models=["digits", str(path)], upload_dir=tmp_path / "up"))
    services = get_services(app)
    assert services.datasets.default("digits", None) == "zoo"
    assert services.datasets.default("w", None) is None
    with pytest.raises(sc.DataError, match="No dataset is chosen"):
        services.datasets.open("w", None, None)
    with pytest.raises(sc.DataError, match="not an example network"):
        services.datasets.open("w", "zoo", None)
    state = {"model": "digits", "layer": "fc1", "tab": "subspaces", "dataset": "zoo"}
    assert "dataset" not in encode_search(state, default_dataset="zoo")
    assert encode_search({**state, "dataset": "upload-ab"}, default_dataset="zoo").endswith(
        "&dataset=upload-ab"
    )


def test_descramble_dataset_source_uses_the_uploaded_dataset(app):
    client = app.server.test_client()
    x, y = _digits(50)
    dataset_id = _post(client, _npz(x, y), "d.npz").json["dataset_id"]
    session = _session(client)
    services = get_services(app)
    assert services.descramble.choices("digits", session, dataset_id) == {}
    opts = DescrambleOptions(source="dataset", samples=1000)
    data = services.descramble.run("digits", "fc1", opts, session, dataset=dataset_id)
    assert data.n_signals == 50 and "d.npz has 50 inputs" in data.note
    zoo = services.descramble.run("digits", "fc1", opts, session)
    assert zoo.n_signals != 50
    key = services.descramble.key("digits", "fc1", opts, session, dataset_id)
    assert key != services.descramble.key("digits", "fc1", opts, session)
    # the same signals by hand: S from the dataset's inputs through fc1
    expected = sc.descramble_layer(
        sc.zoo.load("digits"), "fc1", position="linear", source="dataset", x=torch.from_numpy(x)
    )
    np.testing.assert_allclose(data.P, expected.result.P.numpy(), atol=1e-5)
    # a dataset that does not fit disables the dataset sources, saying why
    bad = _post(client, _npz(np.zeros((4, 10))), "bad.npz").json["dataset_id"]
    reasons = services.descramble.choices("digits", session, bad)
    assert set(reasons) == {"source:dataset", "source:jacobian"}
    assert "(10,)" in reasons["source:dataset"]


def test_zip_of_images_and_pt_tensors_fit_the_model(app):
    import zipfile

    from PIL import Image

    x, y = _digits(6)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (xi, c) in enumerate(zip(x, y, strict=True)):
            png = io.BytesIO()
            Image.fromarray((xi.reshape(8, 8) * 255).round().astype(np.uint8)).save(png, "PNG")
            zf.writestr(f"digits/{int(c)}/{i}.png", png.getvalue())
    client = app.server.test_client()
    res = _post(client, buf.getvalue(), "digits.zip")
    assert res.status_code == 200, res.json
    services = get_services(app)
    session = _session(client)
    opened = services.datasets.open("digits", res.json["dataset_id"], session)
    assert opened.data.x.shape == (6, 64)  # (1, 8, 8) images reshaped to the model's (64,)
    order = sorted(range(6), key=lambda i: (int(y[i]), i))  # members in folder order
    np.testing.assert_allclose(opened.data.x.numpy(), x[order], atol=0.5 / 255)
    np.testing.assert_array_equal(opened.data.y.numpy(), y[order])

    pt = io.BytesIO()
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, pt)
    res = _post(client, pt.getvalue(), "digits.pt")
    assert res.status_code == 200, res.json
    opened = services.datasets.open("digits", res.json["dataset_id"], session)
    np.testing.assert_array_equal(opened.data.x.numpy(), x)
