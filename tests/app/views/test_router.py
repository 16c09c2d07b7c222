"""URL state: parsing, canonical encoding and resolution against what exists."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from app import ids
from app.config import AppConfig
from app.services import Services
from app.views.router import encode_search, parse_search, resolve_state


@pytest.fixture
def services(tmp_path):
    path = tmp_path / "net.safetensors"
    save_file(
        {
            "a.weight": torch.randn(4, 3),
            "b.weight": torch.randn(5, 2, 3, 3),
            "mask": torch.ones(2, 2, dtype=torch.bool),
        },
        str(path),
    )
    return Services(AppConfig(models=[str(path)], upload_dir=tmp_path / "up"))


def _texts(alerts) -> str:
    return " ".join(str(a.children[-1].children) for a in alerts)


def test_parse_and_encode_round_trip():
    state = {"model": "deernet", "layer": "fc 1", "tab": "spectrum", "view": "kernels"}
    search = encode_search(state, default_view="unfolded")
    assert search == "?model=deernet&layer=fc+1&tab=spectrum&view=kernels"
    assert parse_search(search) == state
    assert "view" not in encode_search({**state, "view": "unfolded"}, default_view="unfolded")
    assert parse_search("") == {} and parse_search(None) == {}
    assert parse_search("?model=x&junk=1&model=y") == {"model": "x"}


def test_resolve_fills_defaults(services):
    state, alerts, info = resolve_state(services, None, {})
    assert state == {
        "model": "net",
        "layer": "a",
        "view": "default",
        "tab": ids.TAB_WEIGHTS,
        "dataset": None,  # a weights file has no data of its own
    }
    assert alerts == [] and info.name == "a"


def test_resolve_keeps_a_valid_request(services):
    asked = {"model": "net", "layer": "b", "view": "kernels", "tab": "vectors", "dataset": None}
    state, alerts, info = resolve_state(services, None, asked)
    assert state == asked and alerts == [] and info.kind == "conv2d"
    state, _, _ = resolve_state(services, None, {**asked, "view": "bogus"})
    assert state["view"] == "unfolded"  # the layer's first view


def test_resolve_explains_every_fallback(services):
    state, alerts, _ = resolve_state(services, None, {"model": "upload-deadbeef", "tab": "x"})
    assert state["model"] == "net" and state["tab"] == ids.TAB_WEIGHTS
    assert "not available in this browser session" in _texts(alerts)
    state, alerts, _ = resolve_state(services, None, {"model": "net", "layer": "zzz"})
    assert state["layer"] == "a" and "has no layer 'zzz'" in _texts(alerts)
    state, alerts, _ = resolve_state(services, None, {"model": "net", "layer": "mask"})
    assert state["layer"] == "a" and "'mask' has no matrix view" in _texts(alerts)
    # a click on a tensor without a matrix view keeps the layer that was shown
    asked = {"model": "net", "layer": "mask"}
    state, alerts, _ = resolve_state(services, None, asked, fallback_layer="b")
    assert state["layer"] == "b" and "bool" in _texts(alerts)
