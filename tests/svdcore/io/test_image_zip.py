"""svdcore.io.image_zip (through load_dataset): .zip folders of images, unsafe zips."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from svdcore.exceptions import DataError, LoadError
from svdcore.io.datasets import load_dataset

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


def test_members_sort_naturally_whatever_digits_their_names_hold(tmp_path):
    gray = np.zeros((4, 4), np.uint8)
    names = ["img10.png", "IMG9.png", "img2.png", "²0.png", "٣.png"]  # superscript, Arabic-Indic
    ds = load_dataset(
        _zip(tmp_path / "n.zip", {name: _png(gray + i) for i, name in enumerate(names)})
    )
    order = [int(v) for v in ds.x.reshape(len(names), -1)[:, 0] * 255 + 0.5]
    # digit runs compare as numbers ("٣" is 3; "²" is text), the rest case-insensitively
    expected = ["٣.png", "img2.png", "IMG9.png", "img10.png", "²0.png"]
    assert [names[i] for i in order] == expected
