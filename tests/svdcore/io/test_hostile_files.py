"""Hostile and broken inputs through the loader API (SECURITY.md): pickles that would run
code (and do not), torch.export archives that would make torch.export.load run code, zip
bombs refused before unpacking, deep nesting, corrupt and truncated files, odd dtypes and
ranks, NaN/Inf weights, and a model of 10^4 tiny tensors. Every refusal is a
`SvdscopeError` whose sentence names the file and the problem."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shlex
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

import svdcore as sc
from svdcore.exceptions import DataError, LoadError, SvdscopeError
from svdcore.io import _archives
from svdcore.io.datasets import load_dataset
from svdcore.sources import SafetensorsSource


class Payload:
    """Unpickling this runs ``touch <marker>`` (os.system): the classic pickle exploit."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a payload ran"


def _png(shape=(4, 4)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros(shape, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()


# ----------------------------------------------------------------------------- pickles
@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
@pytest.mark.parametrize("layout", ["zip", "legacy", "bare"])
def test_model_pickles_with_code_are_refused_and_never_run(tmp_path, marker, suffix, layout):
    path = tmp_path / f"evil{suffix}"
    obj = {"fc.weight": torch.randn(2, 2), "x": Payload(marker)}
    if layout == "bare":
        path.write_bytes(pickle.dumps(Payload(marker)))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=layout == "zip")
    with pytest.raises(LoadError) as err:
        sc.load_model(path)
    message = str(err.value)
    assert message.startswith(f"evil{suffix} contains Python objects other than tensors")
    assert "posix.system" in message or "os.system" in message  # the refused global, named
    assert "never unpickles code" in message
    assert not marker.exists()


def test_dataset_pickles_with_code_are_refused_and_never_run(tmp_path, marker):
    torch.save({"x": torch.zeros(3, 2), "y": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(LoadError, match=r"evil\.pt contains Python objects.*posix\.system"):
        load_dataset(tmp_path / "evil.pt")
    # a .npy object array (np.save pickles it) and an .npz holding one
    np.save(tmp_path / "evil.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(LoadError, match=r"evil\.npy holds Python objects.*never unpickles"):
        load_dataset(tmp_path / "evil.npy")
    np.savez(tmp_path / "evil.npz", x=np.array([Payload(marker)], dtype=object))
    with pytest.raises(LoadError, match=r"evil\.npz holds Python objects.*never unpickles"):
        load_dataset(tmp_path / "evil.npz")
    np.savez(tmp_path / "evil_y.npz", x=np.zeros((1, 2)), y=np.array([Payload(marker)]))
    with pytest.raises(LoadError, match="Python objects"):
        load_dataset(tmp_path / "evil_y.npz")
    assert not marker.exists()


def test_pickles_inside_zips_are_never_opened(tmp_path, marker):
    evil_pickle = pickle.dumps(Payload(marker))
    buf = io.BytesIO()
    np.save(buf, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    torch_zip = io.BytesIO()
    torch.save({"x": Payload(marker)}, torch_zip)
    path = _zip(
        tmp_path / "images.zip",
        {
            "cats/1.png": _png(),
            "cats/evil.pkl": evil_pickle,
            "cats/evil.npy": buf.getvalue(),
            "cats/evil.pt": torch_zip.getvalue(),
        },
    )
    ds = load_dataset(path)  # the images are read; the pickles are skipped, unopened
    assert len(ds) == 1 and any("skipped 3" in note for note in ds.notes)
    # a pickle dressed as an image is not an image
    with pytest.raises(LoadError, match=r"cats/2\.png is not a readable PNG/JPEG"):
        load_dataset(_zip(tmp_path / "dressed.zip", {"cats/2.png": evil_pickle}))
    # a torch.save archive (itself a zip) uploaded as a dataset zip has no images
    (tmp_path / "model.zip").write_bytes(torch_zip.getvalue())
    with pytest.raises(LoadError, match="no PNG or JPEG"):
        load_dataset(tmp_path / "model.zip")
    assert not marker.exists()


# ----------------------------------------------------------------------------- .pt2
def _export(path: Path) -> Path:
    ep = torch.export.export(_mlp(), (torch.randn(2, 3),))
    torch.export.save(ep, path)
    return path


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a .pt2 member by member; edit(name, data) returns new bytes, or None to drop;
    edit may add members by returning {name: bytes} for the key "+"."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        root = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            data = edit(info.filename.split("/", 1)[1], zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (edit("+", None) or {}).items():
            zout.writestr(f"{root}/{name}", data)
    return dst


def _pickled_weight(marker: Path):
    def edit(name, data):
        if name == "data/weights/model_weights_config.json":
            config = json.loads(data)
            config["config"]["0.weight"]["use_pickle"] = True
            return json.dumps(config).encode()
        if name == "data/weights/weight_0":
            buf = io.BytesIO()
            torch.save(Payload(marker), buf)
            return buf.getvalue()
        return data if name != "+" else None

    return edit


def test_torch_export_load_alone_would_run_a_pickled_weight(tmp_path):
    """The threat is real: torch.export.load unpickles such a weight with weights_only=False."""
    ran = tmp_path / "RAN"
    evil = _rewrite(_export(tmp_path / "m.pt2"), tmp_path / "evil.pt2", _pickled_weight(ran))
    with contextlib.suppress(Exception):  # it fails later, after the payload ran
        torch.export.load(str(evil))
    assert ran.exists()


def test_a_pt2_with_a_pickled_weight_is_refused_before_torch_reads_it(tmp_path, marker):
    evil = _rewrite(_export(tmp_path / "m.pt2"), tmp_path / "evil.pt2", _pickled_weight(marker))
    with pytest.raises(LoadError, match=r"evil\.pt2 stores '0\.weight' as a pickle"):
        sc.load_model(evil)


def _opaque_constant(marker: Path):
    def edit(name, data):
        if name == "data/constants/model_constants_config.json":
            entry = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": False}
            return json.dumps({"config": {"c": entry}}).encode()
        if name == "+":
            return {"data/constants/opaque_obj_0": pickle.dumps(Payload(marker))}
        return data

    return edit


def _sample_inputs(marker: Path):
    def edit(name, data):
        if name == "data/sample_inputs/model.pt":
            buf = io.BytesIO()
            torch.save(((Payload(marker),), {}), buf)
            return buf.getvalue()
        return data if name != "+" else None

    return edit


def _extra_member(member: str):
    def edit(name, data):
        return {member: b"\x7fELF not really"} if name == "+" else data

    return edit


def _target(old: str, new: str):
    def edit(name, data):
        if name == "models/model.json":
            return data.replace(old.encode(), new.encode())
        return data if name != "+" else None

    return edit


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_opaque_constant, r"opaque_obj_0"),
        (_sample_inputs, r"sample inputs that are not plain tensors.*posix\.system"),
        (lambda m: _extra_member("data/aotinductor/model/model.so"), r"aotinductor"),
        (lambda m: _extra_member("data/weights/model.pt"), r"'data/weights/model\.pt'"),
        (
            lambda m: _target("torch.ops.aten.relu.default", "torch.ops.aten.save.default"),
            r"calls 'torch\.ops\.aten\.save\.default'",
        ),
        (
            lambda m: _target("torch.ops.aten.relu.default", "torch.os.system"),
            r"calls 'torch\.os\.system'",
        ),
        (lambda m: _target('"name": "self"', '"name": "k=1)\\rprint(7)\\r#"'), r"line break"),
    ],
    ids=[
        "opaque-object",
        "sample-inputs",
        "aoti-library",
        "legacy-pickle",
        "aten-save",
        "python-call",
        "code-in-a-name",
    ],
)
def test_pt2_archives_that_would_run_code_are_refused(tmp_path, marker, edit, fragment):
    evil = _rewrite(_export(tmp_path / "m.pt2"), tmp_path / "evil.pt2", edit(marker))
    with pytest.raises(LoadError, match=fragment) as err:
        sc.load_model(evil)
    assert str(err.value).startswith("evil.pt2 ")
    assert not marker.exists()


def test_loaded_export_graphs_are_checked_operator_by_operator(tmp_path):
    ep = torch.export.export(_mlp(), (torch.randn(2, 3),))
    _archives.check_export_graph(ep, "m.pt2")  # a plain export passes
    for node in ep.graph.nodes:
        if node.op == "call_function" and "relu" in str(node.target):
            node.target = torch.ops.aten.from_file.default  # reads any file on the server
    with pytest.raises(LoadError, match=r"m\.pt2 calls aten\.from_file\.default"):
        _archives.check_export_graph(ep, "m.pt2")
    # a plain archive still opens and runs, as do conv / batch-norm / constant exports
    net = sc.load_model(_export(tmp_path / "ok.pt2"))
    assert net.executable and net.forward(torch.randn(5, 3)).shape == (5, 2)


# ----------------------------------------------------------------------------- zip bombs
def _count_opens(monkeypatch) -> list[str]:
    opened: list[str] = []
    original = zipfile.ZipFile.open

    def counting(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", counting)
    return opened


def test_a_zip_bomb_is_refused_before_anything_is_unpacked(tmp_path, monkeypatch):
    bomb = _zip(tmp_path / "bomb.zip", {"cats/big.png": b"\0" * 100_000_000})
    assert bomb.stat().st_size < 200_000  # 100 MB of zeros deflate to ~100 KB
    # many members each under the ratio limit, declaring more than the cap together
    members = {f"c/{i}.png": os.urandom(1000) + b"\0" * 40_000 for i in range(30)}
    many = _zip(tmp_path / "many.zip", members)
    opened = _count_opens(monkeypatch)
    with pytest.raises(LoadError, match=r"packed 1,0\d\d:1.*zip bomb before unpacking"):
        load_dataset(bomb)  # under the default size cap: refused for its ratio alone
    assert opened == []
    with pytest.raises(LoadError, match=r"unpacks to more than 1,000,000 bytes of images"):
        load_dataset(many, max_bytes=1_000_000)
    assert opened == []


def test_npz_and_torch_zip_bombs_are_refused(tmp_path, monkeypatch):
    np.savez_compressed(tmp_path / "bomb.npz", x=np.zeros((25_000, 1000), np.float32))
    assert (tmp_path / "bomb.npz").stat().st_size < 500_000
    with pytest.raises(LoadError, match=r"bomb\.npz.*zip bomb before unpacking"):
        load_dataset(tmp_path / "bomb.npz")
    # PyTorch writes its archives uncompressed: a compressed member is refused unread
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2000, 1000)}, buf)
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(tmp_path / "bomb.pt", "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(LoadError, match=r"bomb\.pt holds a compressed entry"):
        sc.load_model(tmp_path / "bomb.pt")


def test_a_zip_that_lies_about_its_sizes_is_stopped_while_unpacking(tmp_path):
    data = b"\0" * 3_000_000
    path = _zip(tmp_path / "liar.zip", {"c/a.png": data})
    raw = bytearray(path.read_bytes())
    # declare 1,000 unpacked bytes in the local header and the central directory
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(sig)
        raw[at + offset : at + offset + 4] = struct.pack("<I", 1000)
    path.write_bytes(bytes(raw))
    with pytest.raises(LoadError, match=r"liar\.zip: c/a\.png cannot be unpacked"):
        load_dataset(path)


def test_deep_nesting_and_control_characters_are_refused(tmp_path):
    deep = "/".join(["d"] * _archives.MAX_ZIP_DEPTH) + "/x.png"
    with pytest.raises(LoadError, match=r"nests folders 16 levels deep"):
        load_dataset(_zip(tmp_path / "deep.zip", {deep: _png()}))
    ok = "/".join(["d"] * (_archives.MAX_ZIP_DEPTH - 1)) + "/x.png"
    assert len(load_dataset(_zip(tmp_path / "ok.zip", {ok: _png()}))) == 1
    with pytest.raises(LoadError, match="control character"):
        load_dataset(_zip(tmp_path / "ctl.zip", {"a/b\rc.png": _png()}))


# ----------------------------------------------------------------------------- corrupt
def _valid_files(tmp_path: Path) -> dict[str, Path]:
    sd = {"fc1.weight": torch.randn(6, 4), "fc1.bias": torch.randn(6)}
    files = {}
    save_file(sd, str(tmp_path / "m.safetensors"))
    files["m.safetensors"] = tmp_path / "m.safetensors"
    torch.save(sd, tmp_path / "m.pt")
    files["m.pt"] = tmp_path / "m.pt"
    files["m.pt2"] = _export(tmp_path / "m.pt2")
    np.save(tmp_path / "d.npy", np.random.rand(5, 4).astype(np.float32))
    np.savez(tmp_path / "d.npz", x=np.random.rand(5, 4), y=np.arange(5))
    (tmp_path / "d.csv").write_text(
        "a,b,label\n" + "\n".join(f"{i},{i / 2},{i % 2}" for i in range(9))
    )
    torch.save({"x": torch.randn(5, 4), "y": torch.arange(5)}, tmp_path / "d.pt")
    _zip(tmp_path / "d.zip", {f"c{i % 2}/{i}.png": _png() for i in range(4)})
    for name in ("d.npy", "d.npz", "d.csv", "d.pt", "d.zip"):
        files[name] = tmp_path / name
    return files


def _open(path: Path):
    if path.suffix in (".safetensors", ".pt2") or path.name.startswith("m"):
        net = sc.load_model(path)
        return [net.matrix(layer.name) for layer in net.layers if layer.viewable]
    return load_dataset(path)


def test_truncated_files_give_a_sentence_naming_the_file(tmp_path):
    tried = 0
    for name, path in _valid_files(tmp_path).items():
        data = path.read_bytes()
        cut_dir = tmp_path / f"cut-{name}"
        cut_dir.mkdir()
        for cut in sorted({0, 1, 7, 8, 9, 64, len(data) // 3, len(data) // 2, len(data) - 1}):
            cut_path = cut_dir / name
            cut_path.write_bytes(data[:cut])
            tried += 1
            try:
                _open(cut_path)
            except SvdscopeError as err:
                assert name in str(err) or "no such" in str(err), (name, cut, str(err))
                assert "Traceback" not in str(err)
            # a CSV cut at a line end is a shorter CSV: reading it is right
    assert tried >= 60


_NPY_HUGE = (  # a header that declares 400 GB of data in a 100-byte file
    b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, "
    b"'shape': (100000000000,), }   \n"
)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("h.safetensors", struct.pack("<Q", 2**62) + b"{}", "not a readable safetensors"),
        ("h.safetensors", struct.pack("<Q", 10) + b'{"a":1}xxx', "not a readable safetensors"),
        ("h.pt", b"PK\x03\x04" + b"\0" * 40, "not a readable"),
        ("h.pt2", b"PK\x05\x06" + b"\0" * 18, "not a readable torch.export archive"),
        ("h.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}", "not a readable .npy"),
        ("h.npy", _NPY_HUGE, "not a readable .npy"),
        ("h.csv", b"\xff\xfe\x00\x00garbage\x00\x01", "CSV"),
    ],
)
def test_bad_headers_give_a_sentence(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SvdscopeError, match=fragment):
        _open(path)


# ----------------------------------------------------------------------------- dtypes, ranks
def test_models_with_odd_dtypes_list_them_without_a_matrix_view(tmp_path):
    tensors = {
        "ok.weight": torch.randn(3, 4),
        "c.weight": torch.randn(3, 4, dtype=torch.complex64),
        "i.weight": torch.ones(3, 4, dtype=torch.int32),
        "b.weight": torch.ones(3, 4, dtype=torch.bool),
        "h.weight": torch.randn(3, 4).to(torch.float8_e4m3fn),
        "s.weight": torch.randn(3, 4).to_sparse(),
        "q.weight": torch.quantize_per_tensor(torch.randn(3, 4), 0.1, 0, torch.qint8),
        "scalar": torch.tensor(2.0),
        "ok.bias": torch.randn(3),
    }
    torch.save(tensors, tmp_path / "odd.pt")
    net = sc.load_model(tmp_path / "odd.pt")
    notes = {layer.name: layer.note for layer in net.layers}
    assert set(notes) == {"ok", "c", "i", "b", "h", "s", "q"}  # rank < 2 is not a layer
    assert notes["ok"] is None  # fp8 with no stored scale: viewable, flagged
    assert "without a scale" in notes["h"] and net.layer("h").viewable
    assert "complex" in notes["c"] and "int32" in notes["i"] and "bool" in notes["b"]
    assert "sparse_coo" in notes["s"] and "qint8" in notes["q"]
    for name in ("c", "i", "b", "s", "q"):
        with pytest.raises(sc.LayerError, match=f"layer '{name}' cannot be viewed"):
            net.matrix(name)
    nested = {"n": torch.nested.nested_tensor([torch.randn(2, 3), torch.randn(4, 3)])}
    torch.save(nested, tmp_path / "nested.pt")
    with pytest.raises(LoadError, match=r"'n' is a nested \(ragged\) tensor"):
        sc.load_model(tmp_path / "nested.pt")


def test_a_model_of_scalars_and_vectors_says_there_is_nothing_to_show(tmp_path):
    save_file({"bias": torch.randn(4), "scale": torch.tensor(1.0)}, str(tmp_path / "v.safetensors"))
    with pytest.raises(LoadError, match=r"v\.safetensors holds 2 tensor\(s\) but none with two"):
        sc.load_model(tmp_path / "v.safetensors")


def test_datasets_with_odd_dtypes_and_ranks(tmp_path):
    torch.save(torch.randn(4, 3, dtype=torch.complex64), tmp_path / "c.pt")
    with pytest.raises(DataError, match=r"c\.pt: x is complex"):
        load_dataset(tmp_path / "c.pt")
    torch.save(torch.randn(4, 3).to_sparse(), tmp_path / "s.pt")
    with pytest.raises(DataError, match=r"s\.pt: x is a sparse_coo float32 tensor"):
        load_dataset(tmp_path / "s.pt")
    torch.save(torch.randn(4, 3).to(torch.float8_e5m2), tmp_path / "f8.pt")
    assert load_dataset(tmp_path / "f8.pt").x.dtype == torch.float32
    np.save(tmp_path / "b.npy", np.ones((3, 2), dtype=bool))
    assert load_dataset(tmp_path / "b.npy").x.tolist() == [[1.0, 1.0]] * 3
    np.save(tmp_path / "z.npy", np.float32(3.0))
    with pytest.raises(DataError, match="single number"):
        load_dataset(tmp_path / "z.npy")
    np.save(tmp_path / "u.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match="must be numeric"):
        load_dataset(tmp_path / "u.npy")
    np.save(tmp_path / "e.npy", np.zeros((0, 3), np.float32))
    with pytest.raises(DataError, match="empty"):
        load_dataset(tmp_path / "e.npy")


def test_nan_and_inf_weights_are_listed_and_analyses_say_so(tmp_path):
    W = torch.randn(5, 4)
    W[1, 2], W[3, 0] = float("nan"), float("inf")
    save_file({"bad.weight": W, "good.weight": torch.randn(4, 3)}, str(tmp_path / "n.safetensors"))
    net = sc.load_model(tmp_path / "n.safetensors")
    assert [layer.name for layer in net.layers] == ["bad", "good"]
    shown = net.matrix("bad")  # the weights themselves are shown, NaN and all
    assert torch.isnan(shown[1, 2]) and torch.isinf(shown[3, 0])
    with pytest.raises(DataError, match=r"contains 1 NaN and 1 infinite value\(s\)"):
        sc.spectrum_summary(shown)
    from svdcore.esd import layer_spectra

    rows = {r.name: r for r in layer_spectra(net)}
    assert rows["bad"].summary is None and "1 NaN and 1 infinite" in rows["bad"].note
    assert rows["good"].summary is not None


# ----------------------------------------------------------------------------- 10^4 tensors
def test_a_model_of_ten_thousand_tiny_tensors_lists_fast(tmp_path, monkeypatch, capsys):
    tensors = {f"blocks.{i}.weight": torch.randn(2, 3) for i in range(10_000)}
    save_file(tensors, str(tmp_path / "many.safetensors"))
    started = time.perf_counter()
    net = sc.load_model(tmp_path / "many.safetensors")
    listed = time.perf_counter() - started
    assert len(net.layers) == 10_000
    # reading a tensor does not parse the 10^4-entry header again
    from safetensors import safe_open

    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return safe_open(*args, **kwargs)

    monkeypatch.setattr("safetensors.safe_open", counting)
    started = time.perf_counter()
    for layer in net.layers[:2000]:
        net.matrix(layer.name)
    read = (time.perf_counter() - started) / 2000
    assert calls == []
    torch.testing.assert_close(net.matrix("blocks.9999"), tensors["blocks.9999.weight"])
    assert isinstance(net._source, SafetensorsSource)
    with capsys.disabled():
        print(f"\n10^4 tensors: listed in {listed:.2f} s, {read * 1e6:.0f} µs per tensor read")
