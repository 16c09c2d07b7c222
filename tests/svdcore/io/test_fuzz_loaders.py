"""Fuzzing every loader with hypothesis, on a bounded budget: mutated valid files (cut,
bytes flipped, bytes inserted or deleted, two files spliced), random bytes, and inputs built
from the formats' own structure (safetensors headers, .npy headers, zip directories, CSV
text). Whatever the input, opening it (and viewing every layer it lists) either works or
raises a `SvdscopeError` subclass with a sentence: nothing else escapes.

``SVDSCOPE_FUZZ_EXAMPLES`` scales the budget (default 250 per test; the run prints how many
inputs were tried, which SECURITY.md quotes). The inputs are the same on every run (a
derandomised search, so CI repeats); ``SVDSCOPE_FUZZ_RANDOM=1`` explores new ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as safetensors_bytes

import svdcore as sc
from svdcore.exceptions import SvdscopeError

EXAMPLES = int(os.environ.get("SVDSCOPE_FUZZ_EXAMPLES", "250"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=os.environ.get("SVDSCOPE_FUZZ_RANDOM", "") != "1",
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TRIED: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


# ----------------------------------------------------------------------------- seeds
def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _seeds() -> dict[str, bytes]:
    torch.manual_seed(0)
    sd = {
        "fc1.weight": torch.randn(4, 3),
        "fc1.bias": torch.randn(4),
        "fc2.weight": torch.randn(2, 4),
    }
    seeds = {".safetensors": safetensors_bytes(sd)}
    buf = io.BytesIO()
    torch.save(sd, buf)
    seeds[".pt"] = buf.getvalue()
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    buf = io.BytesIO()
    torch.export.save(torch.export.export(module.eval(), (torch.randn(2, 3),)), buf)
    seeds[".pt2"] = buf.getvalue()
    buf = io.BytesIO()
    torch.onnx.export(module, (torch.randn(2, 3),), buf, dynamo=False)
    seeds[".onnx"] = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).random((5, 3)).astype(np.float32))
    seeds["data.npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, x=np.random.default_rng(1).random((5, 3)), y=np.arange(5))
    seeds["data.npz"] = buf.getvalue()
    seeds["data.csv"] = b"a,b,label\n1,2,0\n3,4,1\n5.5,6,0\n"
    buf = io.BytesIO()
    torch.save({"x": torch.randn(5, 3), "y": torch.arange(5)}, buf)
    seeds["data.pt"] = buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"c{i % 2}/{i}.png", _png(40 * i))
    seeds["data.zip"] = buf.getvalue()
    return seeds


SEEDS = _seeds()


# ----------------------------------------------------------------------------- openers
def _open_model(path: Path) -> None:
    net = sc.load_model(path)
    for layer in net.layers:
        if layer.viewable:
            net.matrix(layer.name)


def _open_dataset(path: Path) -> None:
    sc.load_dataset(path)


def _check(kind: str, path: Path, opener: Callable[[Path], None]) -> None:
    """Open `path`: any outcome but an exception other than SvdscopeError is fine."""
    TRIED[kind] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            opener(path)
        except SvdscopeError as err:
            assert str(err).strip(), "an error without a sentence"
            OUTCOMES["refused"] += 1
        else:
            OUTCOMES["opened"] += 1


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    yield folder
    total = sum(TRIED.values())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(TRIED.items()))
    print(f"\nfuzz: {total} inputs tried ({kinds}); {dict(OUTCOMES)}; none escaped")


# ----------------------------------------------------------------------------- mutations
@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "flip", "insert", "delete", "splice", "header"]))
        n = len(data)
        if op == "cut":
            data = data[: draw(st.integers(0, n))]
        elif op == "flip" and n:
            for _ in range(draw(st.integers(1, 8))):
                data[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
        elif op == "insert":
            at = draw(st.integers(0, n))
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete" and n:
            at = draw(st.integers(0, n - 1))
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "splice":
            other = draw(st.sampled_from(list(SEEDS.values())))
            at = draw(st.integers(0, n))
            data[at:] = other[draw(st.integers(0, len(other))) :]
        elif op == "header" and n:  # most parsers trust their first bytes most
            at = draw(st.integers(0, min(n - 1, 127)))
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, ord("{"), ord("9")]))
    return bytes(data)


def _file(work: Path, suffix: str, data: bytes) -> Path:
    path = work / f"input{suffix}"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pt2", ".onnx"])
def test_mutated_model_files(work, suffix):
    @FUZZ
    @given(data=mutated(SEEDS[suffix]))
    def run(data: bytes) -> None:
        _check(f"model{suffix}", _file(work, suffix, data), _open_model)

    run()


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".pt", ".zip"])
def test_mutated_dataset_files(work, suffix):
    @FUZZ
    @given(data=mutated(SEEDS[f"data{suffix}"]))
    def run(data: bytes) -> None:
        _check(f"dataset{suffix}", _file(work, suffix, data), _open_dataset)

    run()


@FUZZ
@given(data=st.binary(max_size=600), suffix=st.sampled_from(
    [".safetensors", ".pt", ".pth", ".bin", ".pt2", ".onnx", ".npy", ".npz", ".csv", ".zip"]
))  # fmt: skip
def test_random_bytes_in_every_format(work, data, suffix):
    opener = _open_model if suffix in (".safetensors", ".pth", ".bin", ".pt2", ".onnx") else None
    if suffix == ".pt":  # both loaders read .pt
        _check("random.pt(model)", _file(work, suffix, data), _open_model)
    _check(f"random{suffix}", _file(work, suffix, data), opener or _open_dataset)


# ----------------------------------------------------------------------------- structure
_ST_DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "C64", "X"]


@st.composite
def safetensors_files(draw) -> bytes:
    """A header of random tensors (dtype, shape, offsets) over a random data block."""
    header: dict = {}
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
    offset = 0
    for i in range(draw(st.integers(0, 4))):
        shape = draw(st.lists(st.integers(0, 6), max_size=4))
        size = draw(st.integers(0, 200))
        start = draw(st.sampled_from([offset, max(0, offset - 4), offset + 3]))
        header[draw(st.sampled_from([f"t{i}.weight", "", "a", "x" * 300]))] = {
            "dtype": draw(st.sampled_from(_ST_DTYPES)),
            "shape": shape,
            "data_offsets": [start, start + size],
        }
        offset = start + size
    text = json.dumps(header).encode()
    text += b" " * draw(st.integers(0, 8))
    body = draw(st.binary(min_size=0, max_size=offset + 16))
    return (
        struct.pack("<Q", len(text) + draw(st.sampled_from([0, 0, 0, 1, -1, 1 << 40])))
        + text
        + body
    )


@FUZZ
@given(data=safetensors_files())
def test_structured_safetensors(work, data):
    _check("structured.safetensors", _file(work, ".safetensors", data), _open_model)


@st.composite
def npy_files(draw) -> bytes:
    descr = draw(st.sampled_from(["<f4", "<f8", "|b1", "<i8", "<c8", "|O", "<U3", "V8", "<f2"]))
    shape = tuple(draw(st.lists(st.integers(0, 10 ** draw(st.integers(0, 12))), max_size=3)))
    fortran = draw(st.booleans())
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}"
    if draw(st.booleans()):
        header = draw(st.text(max_size=60))
    raw = header.encode("latin1", "replace")
    raw += b" " * (-(len(raw) + 11) % 64) + b"\n"
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x00"]))
    length = struct.pack("<H", len(raw)) if version == b"\x01\x00" else struct.pack("<I", len(raw))
    return b"\x93NUMPY" + version + length + raw + draw(st.binary(max_size=256))


@FUZZ
@given(data=npy_files(), as_npz=st.booleans())
def test_structured_npy_and_npz(work, data, as_npz):
    if as_npz:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("x.npy", data)
        _check("structured.npz", _file(work, ".npz", buf.getvalue()), _open_dataset)
    else:
        _check("structured.npy", _file(work, ".npy", data), _open_dataset)


_NAMES = st.one_of(
    st.sampled_from(
        ["a/1.png", "b/2.png", "../x.png", "/abs.png", "a\\b.png", "C:/x.png", "a/", "a/b/c/d.png",
         "__MACOSX/a/._1.png", ".hidden.png", "x.txt", "a/1.png"]  # a duplicate name too
    ),
    st.text(min_size=1, max_size=40).map(lambda t: t + ".png"),
)  # fmt: skip


@st.composite
def zip_files(draw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        for _ in range(draw(st.integers(0, 5))):
            content = draw(
                st.one_of(
                    st.builds(_png, st.integers(0, 255)),
                    st.binary(max_size=64),
                    st.just(b"\0" * 2_000_000),  # packs ~1000:1
                )
            )
            method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            with contextlib.suppress(Exception):  # names zipfile itself cannot write
                zf.writestr(draw(_NAMES), content, compress_type=method)
    return buf.getvalue()


@FUZZ
@given(data=zip_files())
def test_structured_zips(work, data):
    _check("structured.zip", _file(work, ".zip", data), _open_dataset)


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list('0123456789.,-e\n"abnNaI \t;')), max_size=200))
def test_structured_csv(work, text):
    _check("structured.csv", _file(work, ".csv", text.encode()), _open_dataset)


@FUZZ
@given(index=mutated(json.dumps({"weight_map": {"fc1.weight": "a.safetensors"}}).encode()))
def test_sharded_index_folders(work, index):
    folder = work / "sharded"
    folder.mkdir(exist_ok=True)
    (folder / "a.safetensors").write_bytes(SEEDS[".safetensors"])
    (folder / "model.safetensors.index.json").write_bytes(index)
    _check("index.json", folder / "model.safetensors.index.json", _open_model)
    _check("folder", folder, _open_model)
