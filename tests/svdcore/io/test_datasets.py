"""Dataset readers: every format round-trips; bad and unsafe files get a clear sentence."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from svdcore.exceptions import DataError, LoadError
from svdcore.io.datasets import Dataset, load_dataset, zoo_dataset

RNG = np.random.default_rng(0)


def _png(array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# ----------------------------------------------------------------------------- round trips
def test_npy_round_trip_and_input_shape(tmp_path):
    x = RNG.random((6, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    ds = load_dataset(tmp_path / "x.npy")
    assert isinstance(ds, Dataset) and ds.name == "x.npy" and ds.y is None
    assert ds.x.dtype == torch.float32 and ds.x.shape == (6, 64) and len(ds) == 6
    np.testing.assert_array_equal(ds.x.numpy(), x)
    img = load_dataset(tmp_path / "x.npy", input_shape=(1, 8, 8))
    assert img.x.shape == (6, 1, 8, 8) and img.sample_shape == (1, 8, 8)
    np.testing.assert_array_equal(img.flat().numpy(), x)
    assert ds.reshaped((8, 8)).x.shape == (6, 8, 8)
    np.save(tmp_path / "one.npy", x[0])  # 1-D: one sample when the model says so
    assert load_dataset(tmp_path / "one.npy", input_shape=(64,)).x.shape == (1, 64)
    np.save(tmp_path / "ints.npy", (x * 255).astype(np.uint8))  # kept as stored, cast
    assert load_dataset(tmp_path / "ints.npy").x.dtype == torch.float32


def test_npz_round_trip_with_labels(tmp_path):
    x = RNG.random((5, 3, 4)).astype(np.float64)
    y = np.array([0, 2, 1, 2, 0], dtype=np.int32)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.x.shape == (5, 3, 4) and ds.y.dtype == torch.int64 and ds.y.tolist() == y.tolist()
    assert ds.is_classification
    np.testing.assert_allclose(ds.x.numpy(), x, rtol=1e-7)
    np.savez(tmp_path / "t.npz", x=x, target=RNG.random((5, 2)))
    reg = load_dataset(tmp_path / "t.npz", labels="target")
    assert reg.y.dtype == torch.float32 and reg.y.shape == (5, 2) and not reg.is_classification
    assert load_dataset(tmp_path / "t.npz").y is None


def test_csv_numeric_and_text_labels(tmp_path):
    frame = pd.DataFrame(RNG.random((4, 3)), columns=["a", "b", "c"])
    frame["digit"] = [3, 1, 3, 0]
    frame.to_csv(tmp_path / "n.csv", index=False)
    ds = load_dataset(tmp_path / "n.csv", labels="digit")
    assert ds.x.shape == (4, 3) and ds.y.tolist() == [3, 1, 3, 0] and ds.y.dtype == torch.int64
    np.testing.assert_allclose(ds.x.numpy(), frame[["a", "b", "c"]].to_numpy(), rtol=1e-6)
    frame["digit"] = ["dog", "cat", "dog", "emu"]
    frame.to_csv(tmp_path / "t.csv", index=False)
    ds = load_dataset(tmp_path / "t.csv", labels="digit")
    assert ds.classes == ["cat", "dog", "emu"] and ds.y.tolist() == [1, 0, 1, 2]
    frame["digit"] = [0.5, 1.5, 2.0, 3.0]
    frame.to_csv(tmp_path / "f.csv", index=False)
    assert load_dataset(tmp_path / "f.csv", labels="digit").y.dtype == torch.float32


def test_pt_tensor_dict_and_pair(tmp_path):
    x, y = torch.randn(7, 10), torch.arange(7) % 3
    torch.save(x, tmp_path / "x.pt")
    torch.save({"x": x, "y": y}, tmp_path / "d.pt")
    torch.save((x, y), tmp_path / "p.pt")
    torch.save({"x": x, "label": y.float()}, tmp_path / "k.pt")
    assert torch.equal(load_dataset(tmp_path / "x.pt").x, x)
    for name in ("d.pt", "p.pt"):
        ds = load_dataset(tmp_path / name)
        assert torch.equal(ds.x, x) and torch.equal(ds.y, y)
    assert load_dataset(tmp_path / "k.pt", labels="label").y.dtype == torch.float32


def test_zip_of_grayscale_digits_in_class_folders(tmp_path):
    images = {}
    expected = {}
    for label in ("0", "2", "10"):
        for i in range(2):
            arr = RNG.integers(0, 256, (8, 8), dtype=np.uint8)
            images[f"digits/{label}/img{i}.png"] = _png(arr)
            expected[(label, i)] = arr
    images["digits/README.txt"] = b"not an image"
    images["__MACOSX/digits/._img0.png"] = b"resource fork"
    ds = load_dataset(_zip(tmp_path / "digits.zip", images))
    assert ds.x.shape == (6, 1, 8, 8) and ds.x.dtype == torch.float32
    assert ds.classes == [str(i) for i in range(11)]  # whole-number folders keep their value
    assert sorted(ds.y.tolist()) == [0, 0, 2, 2, 10, 10]
    assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= 1.0
    # natural order: 0, 2, 10; pixels divided by 255
    np.testing.assert_allclose(ds.x[0, 0].numpy(), expected[("0", 0)] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x[5, 0].numpy(), expected[("10", 1)] / 255.0, rtol=1e-6)
    assert any("skipped 1" in note for note in ds.notes)
    flat = load_dataset(tmp_path / "digits.zip", input_shape=(64,))
    assert flat.x.shape == (6, 64)


def test_zip_of_named_classes_rgb_and_mixed(tmp_path):
    rgb = RNG.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    gray = RNG.integers(0, 256, (5, 4), dtype=np.uint8)
    smooth = np.full((5, 4, 3), (200, 120, 40), dtype=np.uint8)  # JPEG keeps flat colour
    path = _zip(
        tmp_path / "pets.zip",
        {
            "dogs/a.png": _png(rgb),
            "cats/b.jpg": _png(smooth, fmt="JPEG"),
            "cats/c.png": _png(gray),
        },
    )
    ds = load_dataset(path)
    assert ds.classes == ["cats", "dogs"]
    assert ds.y.tolist() == [0, 0, 1]  # cats/b.jpg, cats/c.png, dogs/a.png
    assert ds.x.shape == (3, 3, 5, 4)  # channels first, H = 5, W = 4
    np.testing.assert_allclose(ds.x[2].numpy(), rgb.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x[1, 1].numpy(), gray / 255.0, rtol=1e-6)  # gray -> RGB
    jpeg = ds.x[0].numpy()
    np.testing.assert_allclose(jpeg, smooth.transpose(2, 0, 1) / 255.0, atol=0.03)
    assert any("RGB" in note for note in ds.notes)
    loose = load_dataset(_zip(tmp_path / "loose.zip", {"a.png": _png(gray), "b.png": _png(gray)}))
    assert loose.y is None and loose.classes is None and loose.x.shape == (2, 1, 5, 4)


def test_zoo_datasets():
    digits = zoo_dataset("digits")
    assert digits.x.shape == (359, 64) and digits.y.dtype == torch.int64
    assert digits.name == "digits (test)"
    cnn = zoo_dataset("digits-cnn", split="train", n=10)
    assert cnn.x.shape == (10, 1, 8, 8)
    deer = zoo_dataset("deernet", n=20)
    assert deer.x.shape == (20, 256) and deer.y.shape == (20, 256)
    assert deer.y.dtype == torch.float32
    with pytest.raises(LoadError, match="no example network"):
        zoo_dataset("mnist")
    with pytest.raises(DataError, match="split"):
        zoo_dataset("digits", split="validation")


# ----------------------------------------------------------------------------- bad files
def test_shape_mismatch_names_both_shapes(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 7, 7), dtype=np.float32))
    with pytest.raises(DataError, match=r"\(7, 7\) \(49 values\).*\(1, 8, 8\) \(64 values\)"):
        load_dataset(tmp_path / "x.npy", input_shape=(1, 8, 8))


@pytest.mark.parametrize(
    ("arrays", "fragment"),
    [
        (
            {"inputs": np.zeros((2, 2)), "labels": np.zeros(2)},
            r"no array named 'x'.*inputs, labels",
        ),
        ({"x": np.array([[1.0, np.nan]])}, "1 NaN or infinite"),
        (
            {"x": np.zeros((3, 2)), "y": np.zeros(4, dtype=int)},
            r"3 inputs but labels of shape \(4,\)",
        ),
        ({"x": np.zeros((0, 2))}, "empty"),
        ({"x": np.array([[1.0]]), "y": np.array([np.inf])}, "infinite"),
    ],
)
def test_bad_npz_contents(tmp_path, arrays, fragment):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises((DataError, LoadError), match=fragment):
        load_dataset(tmp_path / "bad.npz")


def test_one_dimensional_and_object_arrays(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros(10))
    with pytest.raises(DataError, match=r"reshape\(-1, 1\)"):
        load_dataset(tmp_path / "flat.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(LoadError, match="never unpickles"):
        load_dataset(tmp_path / "obj.npy")
    with pytest.raises(DataError, match=r"\.npz"):
        load_dataset(tmp_path / "flat.npy", labels="y")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/svdscope-dataset-pwned",))


def test_pickle_with_code_is_refused_not_run(tmp_path):
    marker = Path("/tmp/svdscope-dataset-pwned")
    marker.unlink(missing_ok=True)
    torch.save({"x": torch.zeros(2, 2), "evil": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(LoadError, match="never unpickles code"):
        load_dataset(tmp_path / "evil.pt")
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(LoadError, match="not a readable PyTorch"):
        load_dataset(tmp_path / "junk.pt")
    torch.save({"inputs": torch.zeros(2, 2)}, tmp_path / "nox.pt")
    with pytest.raises(LoadError, match=r"without a tensor 'x' \(keys: inputs\)"):
        load_dataset(tmp_path / "nox.pt")


def test_bad_csv_files(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0], "name": ["x", "y"], "label": [0, 1]}).to_csv(
        tmp_path / "text.csv", index=False
    )
    with pytest.raises(DataError, match=r"'name' are not numeric"):
        load_dataset(tmp_path / "text.csv", labels="label")
    with pytest.raises(DataError, match=r"no label column 'digit'.*a, name, label"):
        load_dataset(tmp_path / "text.csv", labels="digit")
    pd.DataFrame({"a": [1.0, None], "b": [1.0, 2.0]}).to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(DataError, match=r"row 1, column 'a'"):
        load_dataset(tmp_path / "nan.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_dataset(tmp_path / "empty.csv")


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "data.txt").write_text("1 2 3")
    with pytest.raises(LoadError, match="unsupported dataset file"):
        load_dataset(tmp_path / "data.txt")
    with pytest.raises(LoadError, match="no such dataset file"):
        load_dataset(tmp_path / "missing.npz")


def test_corrupt_zip(tmp_path):
    (tmp_path / "c.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(LoadError, match="not a readable zip"):
        load_dataset(tmp_path / "c.zip")
    path = _zip(
        tmp_path / "img.zip", {"a/ok.png": _png(np.zeros((4, 4), np.uint8)), "a/bad.png": b"xx"}
    )
    with pytest.raises(LoadError, match=r"a/bad.png is not a readable PNG/JPEG"):
        load_dataset(path)
    with pytest.raises(LoadError, match="no PNG or JPEG"):
        load_dataset(_zip(tmp_path / "none.zip", {"notes.txt": b"hello"}))


@pytest.mark.parametrize(
    "name", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "a\\..\\evil.png"]
)
def test_zip_slip_entries_are_refused(tmp_path, name):
    work = tmp_path / "work"
    work.mkdir()
    path = _zip(
        work / "slip.zip",
        {"a/fine.png": _png(np.zeros((2, 2), np.uint8)), name: _png(np.zeros((2, 2), np.uint8))},
    )
    with zipfile.ZipFile(path) as zf:
        assert name in zf.namelist()  # the archive really holds the hostile name
    with pytest.raises(LoadError, match=r"unsafe entry name|outside the archive"):
        load_dataset(path)
    assert sorted(p.name for p in work.iterdir()) == ["slip.zip"]
    assert not (tmp_path / "evil.png").exists()


def test_zip_bombs_and_image_counts_are_capped(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"a/big.png": b"\0" * 5_000_000})
    assert bomb.stat().st_size < 100_000  # highly compressed
    with pytest.raises(LoadError, match="unpacks to more than 1,000,000 bytes"):
        load_dataset(bomb, max_bytes=1_000_000)
    small = _png(np.zeros((2, 2), np.uint8))
    many = _zip(tmp_path / "many.zip", {f"c/{i}.png": small for i in range(4)})
    with pytest.raises(LoadError, match="more than 3 images"):
        load_dataset(many, max_images=3)
    assert len(load_dataset(many, max_images=4)) == 4
    wide = _png(np.zeros((200, 300), np.uint8))  # 240 kB of float32 pixels when decoded
    with pytest.raises(LoadError, match="decodes to more than"):
        load_dataset(_zip(tmp_path / "wide.zip", {"c/w.png": wide}), max_bytes=100_000)


def test_zip_images_must_share_one_size_and_layout(tmp_path):
    path = _zip(
        tmp_path / "sizes.zip",
        {"a/1.png": _png(np.zeros((4, 4), np.uint8)), "a/2.png": _png(np.zeros((5, 4), np.uint8))},
    )
    with pytest.raises(DataError, match=r"a/1.png is 4x4, a/2.png is 4x5"):
        load_dataset(path)
    mixed = _zip(
        tmp_path / "mixed.zip",
        {"a/1.png": _png(np.zeros((4, 4), np.uint8)), "2.png": _png(np.zeros((4, 4), np.uint8))},
    )
    with pytest.raises(DataError, match="some images sit in class folders"):
        load_dataset(mixed)
    with pytest.raises(DataError, match="folder names"):
        load_dataset(mixed, labels="y")


def test_dataset_checks_its_invariant():
    with pytest.raises(DataError, match="one target per sample"):
        Dataset(torch.zeros(3, 2), torch.zeros(2, dtype=torch.int64), "d")
    with pytest.raises(DataError, match="float32"):
        Dataset(torch.zeros(3, 2, dtype=torch.float64), None, "d")


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_a_file_of_another_kind_is_named_as_such_not_as_a_pickle(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(b"this is a text file, not numpy data\n")
    with pytest.raises(LoadError, match=rf"not a \{suffix} file") as info:
        load_dataset(path)
    assert "pickle" not in str(info.value)
