"""Call a Dash callback over HTTP the way the browser does (shared by the view benchmarks
and the locust load test): POST /_dash-update-component with the callback's outputs,
inputs and states filled from a selection."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from app import ids

ROUTE = "/_dash-update-component"
VIEWS = ("weights", "spectrum", "vectors", "overview")
# (model, layer) of the load test (bench_load.py, locustfile.py): two layers of each zoo model
LOAD_MODELS = ("deernet", "digits-5layer", "ilr-biexp-ndnd")
LOAD_LAYERS = (
    ("deernet", "fc1"),
    ("deernet", "fc2"),
    ("digits-5layer", "fc2"),
    ("digits-5layer", "fc3"),
    ("ilr-biexp-ndnd", "fc2"),
    ("ilr-biexp-ndnd", "fc3"),
)


def _split_outputs(key: str) -> list[dict[str, str]]:
    """Dash's callback key ("..a.b...c.d.." or "a.b") -> [{"id", "property"}, ...]."""
    parts = key.strip(".").split("...") if key.startswith("..") else [key]
    outputs = []
    for part in parts:
        cid, _, prop = part.rpartition(".")
        outputs.append({"id": cid, "property": prop})
    return outputs


def callback_key(app: Any, output: str) -> str:
    """The callback_map key of the callback writing `output` ("component.prop")."""
    for key in app.callback_map:
        if any(f"{o['id']}.{o['property']}".split("@")[0] == output for o in _split_outputs(key)):
            return key
    raise KeyError(f"no callback writes {output}")


def payload(app: Any, output: str, values: dict[str, Any]) -> dict[str, Any]:
    """The request body for the callback writing `output`, with `values` given as
    {"component.prop": value} (missing inputs and states are None)."""
    key = callback_key(app, output)
    spec = app.callback_map[key]
    outputs = _split_outputs(key)

    def fill(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [{**item, "value": values.get(f"{item['id']}.{item['property']}")} for item in items]

    inputs = fill(spec["inputs"])
    return {
        "output": key,
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": inputs,
        "state": fill(spec.get("state", [])),
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }


def selection(model: str, layer: str, tab: str, view: str = "default") -> dict[str, Any]:
    """The STORE_SELECTION_STATE value the router publishes for a layer and tab."""
    return {"model": model, "layer": layer, "view": view, "tab": tab, "dataset": None}


def view_requests(model: str, layer: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (output, values) of the four plain views of a layer."""
    store = f"{ids.STORE_SELECTION_STATE}.data"
    return {
        "weights": (
            f"{ids.GRAPH_WEIGHTS_HEATMAP}.figure",
            {
                store: selection(model, layer, ids.TAB_WEIGHTS),
                f"{ids.RADIO_WEIGHTS_RANGE}.value": "max",
            },
        ),
        "spectrum": (
            f"{ids.GRAPH_SPECTRUM_VALUES}.figure",
            {store: selection(model, layer, ids.TAB_SPECTRUM)},
        ),
        "vectors": (
            f"{ids.GRAPH_VECTORS_RIGHT}.figure",
            {
                store: selection(model, layer, ids.TAB_VECTORS),
                f"{ids.SLIDER_VECTORS_COUNT}.value": 8,
            },
        ),
        "overview": (
            f"{ids.GRAPH_OVERVIEW_SPARKLINES}.figure",
            {store: selection(model, layer, ids.TAB_OVERVIEW)},
        ),
    }


def body(app: Any, name: str, model: str, layer: str) -> bytes:
    output, values = view_requests(model, layer)[name]
    return json.dumps(payload(app, output, values)).encode()


def view_bodies(app: Any, layers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """[{"view", "model", "layer", "body"}, ...]: every view of every (model, layer), the body
    as text (JSON-ready, for the load test's users)."""
    return [
        {"view": v, "model": model, "layer": layer, "body": body(app, v, model, layer).decode()}
        for model, layer in layers
        for v in VIEWS
    ]
