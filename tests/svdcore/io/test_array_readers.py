"""svdcore.io.array_readers (through load_dataset): .npy, .npz, .csv and .pt files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from svdcore.exceptions import DataError, LoadError
from svdcore.io.datasets import Dataset, load_dataset

RNG = np.random.default_rng(0)


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


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_a_file_of_another_kind_is_named_as_such_not_as_a_pickle(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(b"this is a text file, not numpy data\n")
    with pytest.raises(LoadError, match=rf"not a \{suffix} file") as info:
        load_dataset(path)
    assert "pickle" not in str(info.value)
