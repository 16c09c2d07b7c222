"""Guided tours: every shipped tour loads and opens what it names; bad tour files fail at
start with the file and the step; navigation and the router's handling of a step."""

from __future__ import annotations

import json
from contextvars import copy_context

import dash
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from app import ids
from app.config import AppConfig
from app.main import create_app, get_services
from app.tours import (
    SETTABLE,
    TourError,
    check_against_layout,
    control_specs,
    read_tour,
    read_tours,
    step_outputs,
)
from app.views.router import resolve_state
from app.views.tours import available_tours, navigate, step_payload


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(AppConfig(upload_dir=tmp_path_factory.mktemp("up")))


def _write(tmp_path, name: str, tour: dict) -> object:
    path = tmp_path / name
    path.write_text(json.dumps(tour), "utf-8")
    return path


def _tour(**step) -> dict:
    state = {"model": "deernet", "tab": "weights"}
    base = {"title": "A step", "text": "One sentence.", "state": state}
    return {"id": "t", "title": "T", "paper": "P", "steps": [{**base, **step}]}


def test_shipped_tours_load_and_open_what_they_name(app):
    services = get_services(app)
    tours = read_tours()
    assert [t.id for t in tours] == ["deernet", "theorem1", "ilr", "digits", "squares", "shapes"]
    check_against_layout(tours, app.layout)
    for tour in tours:
        assert 3 <= len(tour.steps) <= 8 and tour.summary
        for i, step in enumerate(tour.steps, start=1):
            where = f"{tour.id} step {i}"
            state, alerts, info = resolve_state(services, None, dict(step.state))
            assert alerts == [], where  # model, layer and view exist: no fallback
            for key in ("model", "layer", "tab", "view"):
                if key in step.state:
                    assert state[key] == step.state[key], where
            assert info is not None and info.name == step.state["layer"], where
            if "compare" in step.state:
                layers = [x.name for x in services.registry.layers(step.state["compare"], None)]
                assert step.state["compare_layer"] in layers, where
            # exact methods only: no step starts a background job
            assert step.options.get(ids.RADIO_DESCRAMBLE_METHOD, "exact") == "exact"
            assert step.options.get(ids.RADIO_INVERSION_METHOD, "pseudo-inverse") != "optimise"
            assert len(step.text) <= 480


def test_all_shipped_tours_are_offered_and_fill_the_picker(app):
    picker = next(
        c for c in _components(app.layout) if getattr(c, "id", None) == ids.DROPDOWN_TOUR_SELECT
    )
    assert [o["value"] for o in picker.options] == [t.id for t in read_tours()]
    assert all(o["title"] for o in picker.options)


def test_tours_whose_models_are_not_served_are_not_offered(tmp_path):
    only = create_app(AppConfig(models=["deernet"], upload_dir=tmp_path / "up"))
    offered = available_tours(read_tours(), get_services(only))
    assert [t.id for t in offered] == ["deernet", "theorem1"]
    none = create_app(AppConfig(models=["digits-cnn"], upload_dir=tmp_path / "up2"))
    bar = next(c for c in _components(none.layout) if getattr(c, "id", None) == ids.DIV_TOUR_BAR)
    assert bar.style == {"display": "none"}


def _components(node):
    if isinstance(node, list | tuple):
        for child in node:
            yield from _components(child)
    elif node is not None and not isinstance(node, str | int | float):
        yield node
        yield from _components(getattr(node, "children", None))


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"options": {"radio-nope": 1}}, "'radio-nope' is not a control a tour can set"),
        ({"state": {"model": "deernet", "tab": "nope"}}, "unknown tab 'nope'"),
        ({"state": {"model": "alexnet", "tab": "weights"}}, "unknown model 'alexnet'"),
        ({"state": {"tab": "weights"}}, "the state names no model"),
        ({"state": {"model": "deernet", "tab": "weights", "zoom": 2}}, "unknown state key"),
        (
            {"options": {ids.RADIO_DESCRAMBLE_SOURCE: "noise"}},
            "belongs to the descramble tab, but the step opens weights",
        ),
        (
            {
                "state": {"model": "deernet", "tab": "descramble"},
                "options": {ids.RADIO_DESCRAMBLE_METHOD: "iterative"},
            },
            "one of 'exact' in a tour",
        ),
        (
            {
                "state": {"model": "deernet", "tab": "descramble"},
                "options": {ids.INPUT_DESCRAMBLE_SAMPLES: "many"},
            },
            "must be an integer",
        ),
        ({"text": "x" * 600}, "keep it under 480"),
        ({"state": {"model": "deernet", "tab": "weights", "sample": -1}}, "non-negative"),
        ({"colour": "red"}, "unknown key(s) colour"),
    ],
)
def test_bad_steps_name_the_file_and_the_step(tmp_path, step, message):
    path = _write(tmp_path, "07-bad.json", _tour(**step))
    with pytest.raises(TourError) as err:
        read_tour(path)
    assert "07-bad.json" in str(err.value) and message in str(err.value)
    if "title" not in step:
        assert "step 1" in str(err.value)


def test_unreadable_files_and_duplicate_ids(tmp_path):
    (tmp_path / "01-broken.json").write_text("{not json", "utf-8")
    with pytest.raises(TourError, match=r"01-broken\.json: cannot read"):
        read_tours(tmp_path)
    (tmp_path / "01-broken.json").unlink()
    _write(tmp_path, "01-a.json", _tour())
    _write(tmp_path, "02-b.json", _tour())
    with pytest.raises(TourError, match=r"02-b\.json: the id 't' is already used by 01-a\.json"):
        read_tours(tmp_path)


def test_values_and_focus_are_checked_against_the_page(app, tmp_path):
    bad_value = _tour(
        state={"model": "deernet", "tab": "descramble"},
        options={ids.RADIO_DESCRAMBLE_SOURCE: "telepathy"},
    )
    tour = read_tour(_write(tmp_path, "01-x.json", bad_value))
    with pytest.raises(TourError, match=r"01-x.json, step 1 .*'telepathy' is not an option"):
        check_against_layout([tour], app.layout)
    bad_focus = _tour(focus=ids.GRAPH_DESCRAMBLE_FFT_RAW)  # a graph of another tab
    tour = read_tour(_write(tmp_path, "02-y.json", bad_focus))
    with pytest.raises(TourError, match="is on the descramble tab, not on weights"):
        check_against_layout([tour], app.layout)
    missing = _tour(focus="graph-nowhere")
    tour = read_tour(_write(tmp_path, "03-z.json", missing))
    with pytest.raises(TourError, match="'graph-nowhere' is not a component of the page"):
        check_against_layout([tour], app.layout)


def test_a_bad_tour_file_stops_the_app_at_start(tmp_path, monkeypatch):
    import app.tours as tours_module

    _write(tmp_path, "01-bad.json", _tour(options={"radio-nope": 1}))
    monkeypatch.setattr(tours_module, "TOURS_DIR", tmp_path)
    with pytest.raises(TourError, match=r"01-bad\.json, step 1"):
        create_app(AppConfig(upload_dir=tmp_path / "up"))


def test_a_step_sets_its_tab_and_resets_the_rest_of_that_tab(app):
    specs = control_specs(app.layout)
    assert set(specs) == set(SETTABLE)
    deernet = {t.id: t for t in read_tours()}["deernet"]
    notch = deernet.steps[2]  # descramble: dataset source, symmetrised log FFTs
    values = step_outputs(notch, specs)
    assert values[ids.RADIO_DESCRAMBLE_SOURCE] == "dataset"
    assert values[ids.CHECKLIST_DESCRAMBLE_FFT] == ["symmetrize", "log"]
    assert values[ids.RADIO_DESCRAMBLE_POSITION] == "linear"  # the layout's default
    assert values[ids.RADIO_DESCRAMBLE_METHOD] == "exact"
    assert values[ids.INPUT_DESCRAMBLE_SAMPLES] == 10_000
    assert not any(SETTABLE[c].tab != ids.TAB_DESCRAMBLE for c in values)
    digits = {t.id: t for t in read_tours()}["digits"]
    signal = digits.steps[1]
    out = step_outputs(signal, specs)
    assert out[ids.DROPDOWN_SUBSPACES_CLASS] == 3
    spectrum = step_outputs(digits.steps[0], specs)
    assert spectrum == {}  # the spectrum tab has no settable controls
    # a class picker a step does not name keeps its value (its options come later)
    kernels = step_outputs(digits.steps[-1], specs)
    assert ids.DROPDOWN_SUBSPACES_CLASS not in kernels


def test_navigation_picker_previous_next_finish_and_leave():
    tours = {t.id: t for t in read_tours()}
    deernet = tours["deernet"]
    assert navigate(ids.DROPDOWN_TOUR_SELECT, "deernet", None, tours) == (deernet, 0)
    shown = {"tour": "deernet", "step": 1}
    assert navigate(ids.BUTTON_TOUR_NEXT, "deernet", shown, tours) == (deernet, 2)
    assert navigate(ids.BUTTON_TOUR_PREV, "deernet", shown, tours) == (deernet, 0)
    first = {"tour": "deernet", "step": 0}
    assert navigate(ids.BUTTON_TOUR_PREV, "deernet", first, tours) == (deernet, 0)
    last = {"tour": "deernet", "step": len(deernet.steps) - 1}
    assert navigate(ids.BUTTON_TOUR_NEXT, "deernet", last, tours) is None  # Finish
    assert navigate(ids.BUTTON_TOUR_LEAVE, "deernet", shown, tours) is None
    assert navigate(ids.DROPDOWN_TOUR_SELECT, "digits", shown, tours) == (tours["digits"], 0)
    with pytest.raises(dash.exceptions.PreventUpdate):  # the same tour picked again
        navigate(ids.DROPDOWN_TOUR_SELECT, "deernet", shown, tours)
    with pytest.raises(dash.exceptions.PreventUpdate):  # Next with no tour shown
        navigate(ids.BUTTON_TOUR_NEXT, None, None, tours)


def test_step_payload_requests_the_page_and_sets_the_controls(app):
    specs = control_specs(app.layout)
    controls = list(SETTABLE)
    digits = {t.id: t for t in read_tours()}["digits"]
    shown, request, pending, picked, *values = step_payload(
        digits, 1, specs, controls, {"nonce": 4}
    )
    assert shown == {"tour": "digits", "step": 1, "focus": ids.GRAPH_SUBSPACES_SIGNAL}
    assert request == {"state": digits.steps[1].state, "nonce": 5}
    assert pending == {ids.DROPDOWN_SUBSPACES_CLASS: 3} and picked == "digits"
    by_id = dict(zip(controls, values, strict=True))
    assert by_id[ids.RADIO_SUBSPACES_FOCUS] == "class"
    assert by_id[ids.RADIO_DESCRAMBLE_SOURCE] is dash.no_update  # another tab: untouched


def _sync_state(app):
    for key, entry in app.callback_map.items():
        if key.startswith("..location-page-url.search..."):
            return entry["callback"].__wrapped__
    raise AssertionError("no sync_state callback")


def test_the_router_opens_a_step_like_a_link(app):
    """A tour request is resolved like a link: the whole state, not merged with the page."""
    sync_state = _sync_state(app)
    step = {t.id: t for t in read_tours()}["ilr"].steps[2]
    current = {"model": "digits", "layer": "fc1", "tab": "subspaces", "sample": "7"}

    def run():
        context_value.set(
            AttributeDict(triggered_inputs=[{"prop_id": f"{ids.STORE_TOUR_REQUEST}.data"}])
        )
        args = [None] * 14 + [{"state": step.state, "nonce": 1}, current]
        return sync_state(*args)

    out = copy_context().run(run)
    search, state = out[0], out[11]
    assert search == (
        "?model=ilr-biexp-ndnd&layer=fc1&tab=compare&compare=ilr-biexp-ndreg&compare_layer=fc1"
    )
    assert state["model"] == "ilr-biexp-ndnd" and state["tab"] == ids.TAB_COMPARE
    assert "sample" not in state and out[3] == ids.TAB_COMPARE and out[12] == []
