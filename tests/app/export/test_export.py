"""Exports: the arrays of every analysis equal svdcore's results on the same layer, the NPZ
round-trips them without pickle, the HTML report is self-contained, and the CLI writes the
same arrays as the API (and says clearly what is wrong)."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

import svdcore as sc
from app.cli import main
from app.config import AppConfig
from app.export import ANALYSES, ExportOptions, export_analysis, html_report, save_npz
from app.services import Services


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    return Services(AppConfig(models=["deernet", "digits"], upload_dir=tmp / "up"))


def test_svd_export_equals_svdcore(services):
    res = export_analysis(services, "deernet", "fc1", "svd", options=ExportOptions(k=6))
    W = sc.zoo.load("deernet").matrix("fc1")
    ref = sc.svd(W)
    s0 = float(ref.S[0])
    np.testing.assert_allclose(res.arrays["singular_values"], ref.S.numpy(), atol=1e-6 * s0)
    np.testing.assert_allclose(res.arrays["S"], ref.S.numpy()[:6], rtol=1e-5)
    U, Vh = res.arrays["U"], res.arrays["Vh"]
    assert U.shape == (80, 6) and Vh.shape == (6, 256)
    np.testing.assert_allclose(np.abs(U.T @ ref.U.numpy()[:, :6]), np.eye(6), atol=1e-4)
    recon = (U * res.arrays["S"]) @ Vh
    np.testing.assert_allclose(recon, (ref.U[:, :6] * ref.S[:6]) @ ref.Vh[:6], atol=1e-4)
    assert res.numbers["numerical_rank"] == sc.numerical_rank(W)
    assert set(res.figures) == {"Spectrum", "Right singular vectors", "Left singular vectors"}


def test_every_analysis_exports_arrays_and_figures(services):
    for analysis in ANALYSES:
        options = ExportOptions(compare_model="digits")  # compare: against itself
        res = export_analysis(services, "digits", "fc1", analysis, options=options)
        assert res.arrays and res.figures, analysis
        assert all(isinstance(a, np.ndarray) for a in res.arrays.values())
        json.dumps(res.numbers)  # plain numbers and text only


def test_descramble_and_surgery_arrays_are_the_engines(services):
    res = export_analysis(services, "deernet", "fc1", "descramble")
    P = res.arrays["P"]
    np.testing.assert_allclose(P @ P.T, np.eye(P.shape[0]), atol=1e-5)  # orthogonal
    np.testing.assert_allclose(res.arrays["PW"], P @ res.arrays["W"], atol=1e-4)
    assert res.numbers["objective"] == pytest.approx(res.numbers["bound"], rel=1e-6)
    sur = export_analysis(services, "digits", "fc1", "surgery", options=ExportOptions(sample=3))
    a = sur.arrays
    total = a["alpha"].sum(axis=1) + a["bypass"] + a["bias"]
    np.testing.assert_allclose(total, a["y"], atol=1e-4)  # contributions add up to the output
    assert sur.numbers["options.sample"] == 3


def test_npz_round_trip_without_pickle(services, tmp_path):
    res = export_analysis(services, "digits", "fc1", "subspaces")
    path = save_npz(res, tmp_path / "sub.npz")
    with np.load(path, allow_pickle=False) as z:
        for name, arr in res.arrays.items():
            np.testing.assert_array_equal(z[name], arr)
        meta = json.loads(str(z["meta"]))
        assert (meta["analysis"], meta["model"], meta["layer"]) == ("subspaces", "digits", "fc1")
        assert int(z["rank"]) == res.numbers["rank"]


def test_html_report_is_self_contained(services):
    res = [export_analysis(services, "deernet", "fc1", a) for a in ("svd", "fft")]
    page = html_report(res)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src=" not in page  # nothing is fetched: plotly.js is inlined
    assert page.count('class="plotly-graph-div"') == sum(len(r.figures) for r in res)
    assert "condition_number" in page and "deernet › fc1" in page
    with pytest.raises(sc.DataError, match="nothing to report"):
        html_report([])


def test_bad_requests_name_the_problem(services):
    with pytest.raises(sc.DataError, match="unknown analysis 'pca'"):
        export_analysis(services, "digits", "fc1", "pca")
    with pytest.raises(sc.LayerError, match="nope"):
        export_analysis(services, "digits", "nope", "svd")


def test_cli_export_matches_the_api(services, tmp_path, capsys):
    out = tmp_path / "deernet-svd.npz"
    args = ["export", "deernet", "--layer", "fc1", "--analysis", "svd", "--k", "5"]
    assert main([*args, "--out", str(out), "--no-disk-cache", "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    api = export_analysis(services, "deernet", "fc1", "svd", options=ExportOptions(k=5))
    with np.load(out, allow_pickle=False) as z:
        for name in ("singular_values", "S", "U", "Vh"):
            np.testing.assert_allclose(z[name], api.arrays[name], rtol=1e-6, atol=1e-7)


def test_cli_export_with_a_dataset_file_and_a_report(tmp_path, capsys):
    x = np.random.default_rng(0).random((40, 64)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(40) % 10)
    out = tmp_path / "report.html"
    code = main(
        [
            "export",
            "digits",
            "--layer",
            "fc1",
            "--analysis",
            "surgery",
            "--analysis",
            "svd",
            "--data",
            str(tmp_path / "data.npz"),
            "--sample",
            "7",
            "--out",
            str(out),
            "--no-disk-cache",
            "--quiet",
        ]
    )
    page = out.read_text()
    assert code == 0 and page.count('class="plotly-graph-div"') >= 8
    assert "<th>options.sample</th><td>7</td>" in page  # sample 7 of the uploaded file
    assert "<th>n_signals</th>" not in page  # only the analyses asked for


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--analysis", "svd", "--analysis", "fft", "--out", "x.npz"], "one analysis"),
        (["--analysis", "svd", "--out", "x.txt"], "must end in .npz or .html"),
        (["--analysis", "svd", "--out", "x.npz", "--data", "missing.npz"], "no such dataset"),
    ],
)
def test_cli_export_errors_are_one_line(tmp_path, capsys, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    code = main(["export", "digits", "--layer", "fc1", *argv, "--no-disk-cache", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err


def test_layers_table_formats(capsys):
    assert main(["layers", "digits-5layer", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("name,kind,role,block,shape") and len(lines) == 6
    assert main(["layers", "digits-5layer", "--format", "markdown"]) == 0
    md = capsys.readouterr().out.strip().splitlines()
    assert md[0].startswith("| name | kind") and md[1].startswith("|---") and len(md) == 7


def test_weights_and_compare_exports(services):
    res = export_analysis(services, "deernet", "fc2", "weights")
    np.testing.assert_array_equal(res.arrays["W"], sc.zoo.load("deernet").matrix("fc2").numpy())
    same = export_analysis(
        services, "digits", "fc1", "compare", options=ExportOptions(compare_model="digits", k=4)
    )
    assert same.numbers["diff_fro"] == 0.0 and same.arrays["left_overlap"].shape == (4, 4)
    with pytest.raises(sc.DataError, match="second model"):
        export_analysis(services, "digits", "fc1", "compare")


def test_csv_zip_holds_every_array(services):
    import io
    import zipfile

    from app.export import csv_zip

    res = export_analysis(services, "digits", "fc1", "svd", options=ExportOptions(k=3))
    with zipfile.ZipFile(io.BytesIO(csv_zip(res))) as z:
        assert set(z.namelist()) == {f"{n}.csv" for n in res.arrays} | {"numbers.csv"}
        U = np.loadtxt(io.StringIO(z.read("U.csv").decode()), delimiter=",")
        np.testing.assert_allclose(U, res.arrays["U"], rtol=1e-6, atol=1e-9)
        S = np.loadtxt(io.StringIO(z.read("S.csv").decode()), delimiter=",")
        np.testing.assert_allclose(S, res.arrays["S"], rtol=1e-6)


def test_static_report_has_svg_drawings_and_no_javascript(services):
    res = [export_analysis(services, "digits", "fc1", "fft")]
    page = html_report(res, static=True)
    assert "<script" not in page and page.count("<svg") >= len(res[0].figures)


def test_static_image_retries_kaleidos_start_up_race_only(monkeypatch):
    import plotly.io as pio

    from app.export.files import static_image

    calls = []

    def flaky(fig, **kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise RuntimeError("ReferenceError: kaleido_scopes is not defined")
        return b"<svg/>"

    monkeypatch.setattr(pio, "to_image", flaky)
    assert static_image(go.Figure()) == b"<svg/>" and len(calls) == 2

    def broken(fig, **kwargs):
        calls.append(kwargs)
        raise RuntimeError("no chromium")

    calls.clear()
    monkeypatch.setattr(pio, "to_image", broken)
    with pytest.raises(sc.SvdscopeError, match="no chromium"):
        static_image(go.Figure())
    assert len(calls) == 1  # anything else is reported at once
