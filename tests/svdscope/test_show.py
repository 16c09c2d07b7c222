"""svdscope in a notebook: show() serves the dashboard inline from a real Jupyter kernel,
takes modules and arrays, and figure() draws svdcore's results as the page does."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
import svdscope
from app.main import get_services


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_show_inline_in_a_real_kernel():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    port = _free_port()
    check = (
        "import urllib.request\n"
        f"page = urllib.request.urlopen('http://127.0.0.1:{port}/_dash-layout').read().decode()\n"
        "print('dropdown-model-select' in page, 'table-layer-list' in page)"
    )
    draw = (
        "import svdcore as sc\n"
        "svdscope.figure(sc.spectrum_summary(sc.zoo.load('digits').matrix('fc1')))"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"import svdscope\napp = svdscope.show('digits', port={port})"),
        nbformat.v4.new_code_cell(check),
        nbformat.v4.new_code_cell(draw),
    ]
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    shown, checked, drawn = (cell["outputs"] for cell in nb.cells)
    html = "".join(o.get("data", {}).get("text/html", "") for o in shown)
    assert f'src="http://127.0.0.1:{port}/"' in html and "<iframe" in html
    assert "".join(o.get("text", "") for o in checked).strip() == "True True"
    kinds = {k for o in drawn for k in o.get("data", {})}
    assert kinds & {"application/vnd.plotly.v1+json", "text/html"}, kinds


@pytest.fixture
def no_server(monkeypatch):
    calls = []
    monkeypatch.setattr("dash.Dash.run", lambda self, **kw: calls.append(kw))
    return calls


def test_show_takes_a_module_and_arrays(no_server):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    x = np.random.default_rng(0).random((20, 12)).astype(np.float32)
    y = np.arange(20) % 3
    app = svdscope.show(module, dataset=(x, y), example_input=torch.randn(1, 12), height=700)
    assert no_server[0]["jupyter_mode"] == "inline" and no_server[0]["jupyter_height"] == 700
    services = get_services(app)
    (entry,) = services.registry.models(None)
    net = services.registry.network(entry.id, None)
    assert net.executable and [li.name for li in net.layers] == ["0", "2"]
    np.testing.assert_array_equal(net.matrix("0").numpy(), module[0].weight.detach().numpy())
    assert services.datasets.default(entry.id, None) == "file-0"
    opened = services.datasets.open(entry.id, "file-0", None)
    np.testing.assert_array_equal(opened.data.x.numpy(), x)
    assert opened.data.y.tolist() == y.tolist()


def test_show_weights_only_module_and_bad_input(no_server):
    app = svdscope.show(nn.Linear(5, 4), mode="external")
    assert no_server[0]["jupyter_mode"] == "external"
    services = get_services(app)
    net = services.registry.network(services.registry.models(None)[0].id, None)
    assert not net.executable and net.layer("weight").shape == (4, 5)
    with pytest.raises(sc.DataError, match=r"nn\.Module, not int"):
        svdscope.show(3)


def test_figure_draws_each_result_kind():
    W = torch.randn(30, 20, generator=torch.Generator().manual_seed(1))
    spectrum = svdscope.figure(sc.spectrum_summary(W), title="s")
    assert spectrum.layout.title.text == "s" and len(spectrum.data[0].y) == 20
    top = svdscope.figure(sc.top_spectrum(W, 5))
    assert len(top.data[0].y) == 5
    right = svdscope.figure(sc.svd(W), k=4)
    left = svdscope.figure(sc.svd(W), k=3, side="left")
    assert len(right.data) == 4 and len(left.data) == 3 and len(left.data[0].y) == 30
    fft = svdscope.figure(sc.fft2_view(W, symmetrize=True, log=True))
    assert fft.data[0].type == "heatmap"
    overlap = svdscope.figure(sc.compare_layers(W, W * 2, k=3))
    assert [t.type for t in overlap.data][:2] == ["heatmap", "heatmap"]
    heat = svdscope.figure(W.numpy())
    assert np.asarray(heat.data[0].z).shape == (30, 20)
    json.loads(heat.to_json())
    with pytest.raises(sc.DataError, match="not dict"):
        svdscope.figure({})
