"""`svdscope layers FILE` on hostile and broken files: one clear line on stderr, exit 2,
no traceback, and the payload never runs; odd layers are listed with the reason."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from app.cli import main


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_a_pickle_with_code_is_one_line_on_stderr_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    torch.save({"fc.weight": torch.randn(2, 2), "x": Payload(marker)}, tmp_path / "evil.pt")
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "layers", str(tmp_path / "evil.pt")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("svdscope: error: evil.pt contains Python objects other than")
    assert "posix.system" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not marker.exists()


def _bomb(path: Path) -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(1000, 1000)}, buf)
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=zipfile.ZIP_DEFLATED)


@pytest.mark.parametrize(
    ("name", "make", "fragment"),
    [
        ("bomb.pt", _bomb, "bomb.pt holds a compressed entry"),
        (
            "cut.safetensors",
            lambda p: p.write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{"),
            "cut.safetensors is not a readable safetensors file",
        ),
        (
            "bias.safetensors",
            lambda p: save_file({"b": torch.randn(3)}, str(p)),
            "bias.safetensors holds 1 tensor(s) but none with two or more dimensions",
        ),
        ("junk.pt2", lambda p: p.write_bytes(b"junk"), "junk.pt2 is not a readable torch.export"),
    ],
)
def test_broken_files_are_one_line_errors(tmp_path, capsys, name, make, fragment):
    make(tmp_path / name)
    assert main(["layers", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"svdscope: error: {fragment}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_nan_layers_are_listed_with_the_reason(tmp_path, capsys):
    W = torch.randn(4, 3)
    W[2, 1] = float("inf")
    save_file({"bad.weight": W, "good.weight": torch.randn(3, 3)}, str(tmp_path / "n.safetensors"))
    assert main(["layers", str(tmp_path / "n.safetensors")]) == 0
    out = capsys.readouterr().out
    bad = next(line for line in out.splitlines() if line.startswith("bad "))
    assert "0 NaN and 1 infinite value(s)" in bad
    good = next(line for line in out.splitlines() if line.startswith("good "))
    assert good.split()[-1] != "-"  # its effective rank is computed
    assert main(["layers", str(tmp_path / "n.safetensors"), "--format", "csv"]) == 0
    assert (
        "skipped: matrix of shape (4, 3) contains 0 NaN and 1 infinite" in capsys.readouterr().out
    )
