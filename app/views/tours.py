"""Guided tours: a bar above the views with a tour picker and, while a tour is shown, the
step's title and text with Previous / Next / Leave (the bar then stays in view while the
page scrolls).

The tours are data (app/tours/*.json, read and checked by `app.tours`). Going to a step
writes the step's page state to STORE_TOUR_REQUEST, which the router's `sync_state`
resolves like a link (it stays the only writer of the URL and the page state), and the
values of the settable controls of the step's tab (allow_duplicate outputs: the step's
options, the others back to their defaults). The views then redraw as if the presenter
had clicked there. A class picker whose options the page fills in for the new model gets
its value again once they arrive (STORE_TOUR_PENDING). A step with a `focus` scrolls that
component to just below the bar. Leaving keeps the view shown.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html, no_update

from app import ids
from app.tours import SETTABLE, ControlSpec, Tour, load_tours, step_outputs

__all__ = ["available_tours", "bar", "navigate", "register", "step_payload"]

_BAR_CLASS = "tour-bar"
_HIDDEN = {"display": "none"}

# Scroll the step's focus (a component id) to just below the sticky bar, or to the top:
# once it is drawn (a view may take seconds), again while the views above it still grow,
# and never against the presenter (a scroll of theirs, or the next step, ends it).
_SCROLL_JS = """
function (shown) {
    if (!shown) { return window.dash_clientside.no_update; }
    const token = {};
    window.svdscopeTourScroll = token;
    const started = Date.now();
    let placed = null, placedAt = 0, scrollY = null;
    const tick = () => {
        const now = Date.now();
        if (window.svdscopeTourScroll !== token || now - started > 20000) { return; }
        if (scrollY !== null && Math.abs(window.scrollY - scrollY) > 2) { return; }
        let top = 0;
        if (shown.focus) {
            const el = document.getElementById(shown.focus);
            if (!el || !el.offsetParent) { setTimeout(tick, 250); return; }
            const bar = document.getElementById(%(bar)s);
            const offset = bar ? bar.getBoundingClientRect().height + 10 : 0;
            top = Math.max(0, el.getBoundingClientRect().top + window.scrollY - offset);
        }
        if (placed === null || Math.abs(top - placed) > 2) {
            window.scrollTo(0, top);
            placed = top;
            placedAt = now;
        }
        scrollY = window.scrollY;
        if (now - placedAt < 2500) { setTimeout(tick, 250); }
    };
    setTimeout(tick, 100);
    return window.dash_clientside.no_update;
}
"""


def bar() -> html.Section:
    """The tour bar: a picker row, and the step card (hidden until a tour is picked)."""
    step = html.Div(
        [
            html.Div(
                [
                    html.Span(id=ids.TEXT_TOUR_TITLE, className="tour-title"),
                    html.Span(id=ids.TEXT_TOUR_COUNTER, className="tour-counter"),
                ],
                className="tour-head",
            ),
            html.H3(id=ids.TEXT_TOUR_STEP_TITLE, className="tour-step-title"),
            html.P(id=ids.TEXT_TOUR_STEP_TEXT, className="tour-step-text"),
            html.Div(
                [
                    html.Button("‹ Previous", id=ids.BUTTON_TOUR_PREV, className="tour-prev"),
                    html.Button("Next ›", id=ids.BUTTON_TOUR_NEXT, className="tour-next"),
                    html.Button("Leave tour", id=ids.BUTTON_TOUR_LEAVE, className="tour-leave"),
                ],
                className="tour-buttons",
            ),
        ],
        id=ids.DIV_TOUR_STEP,
        className="tour-step",
        style=_HIDDEN,
    )
    picker = html.Div(
        [
            html.Label("Guided tours", htmlFor=ids.DROPDOWN_TOUR_SELECT, className="tour-label"),
            dcc.Dropdown(
                id=ids.DROPDOWN_TOUR_SELECT,
                options=[],
                value=None,
                clearable=False,
                searchable=False,
                placeholder="Pick a tour: a paper's findings, step by step, on the zoo",
                className="tour-picker",
            ),
        ],
        className="tour-picker-row",
    )
    return html.Section(
        [
            dcc.Store(id=ids.STORE_TOUR_STATE, storage_type="memory"),
            dcc.Store(id=ids.STORE_TOUR_REQUEST, storage_type="memory"),
            dcc.Store(id=ids.STORE_TOUR_PENDING, storage_type="memory"),
            dcc.Store(id=ids.STORE_TOUR_SCROLL, storage_type="memory"),
            picker,
            step,
        ],
        id=ids.DIV_TOUR_BAR,
        className=_BAR_CLASS,
    )


def available_tours(tours: list[Tour], services: Any) -> list[Tour]:
    """The tours whose models this app offers (SVDSCOPE_MODELS may leave some out)."""
    offered = {m.id for m in services.registry.models(None)}
    return [t for t in tours if t.models <= offered]


def register(app: dash.Dash, services: Any) -> list[Tour]:
    """Read and check the tours against the app's layout (a TourError names the file and
    step), fill the picker and register the callbacks; returns the tours offered."""
    tours, specs = load_tours(app.layout)
    tours = available_tours(tours, services)
    by_id = {t.id: t for t in tours}
    controls = list(SETTABLE)
    options = [{"label": t.title, "value": t.id, "title": t.summary or t.paper} for t in tours]
    _set_prop(app.layout, ids.DROPDOWN_TOUR_SELECT, "options", options)
    if not tours:  # none of the tours' models is served here: no picker either
        _set_prop(app.layout, ids.DIV_TOUR_BAR, "style", _HIDDEN)

    @app.callback(
        Output(ids.STORE_TOUR_STATE, "data"),
        Output(ids.STORE_TOUR_REQUEST, "data"),
        Output(ids.STORE_TOUR_PENDING, "data"),
        Output(ids.DROPDOWN_TOUR_SELECT, "value"),
        *[Output(cid, "value", allow_duplicate=True) for cid in controls],
        Input(ids.DROPDOWN_TOUR_SELECT, "value"),
        Input(ids.BUTTON_TOUR_PREV, "n_clicks"),
        Input(ids.BUTTON_TOUR_NEXT, "n_clicks"),
        Input(ids.BUTTON_TOUR_LEAVE, "n_clicks"),
        State(ids.STORE_TOUR_STATE, "data"),
        State(ids.STORE_TOUR_REQUEST, "data"),
        prevent_initial_call=True,
    )
    def go_to_step(
        picked: str | None, _prev: Any, _next: Any, _leave: Any, shown: Any, last: Any
    ) -> tuple[Any, ...]:
        """Picker, Previous, Next (Finish on the last step), Leave -> the step shown."""
        target = navigate(ctx.triggered_id, picked, shown, by_id)
        if target is None:  # Leave, Finish, or an unknown tour: the view stays as it is
            return (None, no_update, None, None, *[no_update] * len(controls))
        return step_payload(*target, specs, controls, last)

    @app.callback(
        Output(ids.DIV_TOUR_BAR, "className"),
        Output(ids.DIV_TOUR_STEP, "style"),
        Output(ids.TEXT_TOUR_TITLE, "children"),
        Output(ids.TEXT_TOUR_COUNTER, "children"),
        Output(ids.TEXT_TOUR_STEP_TITLE, "children"),
        Output(ids.TEXT_TOUR_STEP_TEXT, "children"),
        Output(ids.BUTTON_TOUR_PREV, "disabled"),
        Output(ids.BUTTON_TOUR_NEXT, "children"),
        Input(ids.STORE_TOUR_STATE, "data"),
    )
    def show_step(shown: Any) -> tuple[Any, ...]:
        tour = by_id.get((shown or {}).get("tour"))
        if tour is None:
            return _BAR_CLASS, _HIDDEN, "", "", "", "", True, "Next ›"
        i = min(int(shown.get("step") or 0), len(tour.steps) - 1)
        step = tour.steps[i]
        title = [html.Strong(tour.title), html.Span(f" · {tour.paper}", className="tour-paper")]
        last = i == len(tour.steps) - 1
        return (
            f"{_BAR_CLASS} tour-active",
            {"display": "block"},
            title,
            f"step {i + 1} of {len(tour.steps)}",
            step.title,
            step.text,
            i == 0,
            "Finish ✓" if last else "Next ›",
        )

    app.clientside_callback(
        _SCROLL_JS % {"bar": repr(ids.DIV_TOUR_BAR)},
        Output(ids.STORE_TOUR_SCROLL, "data"),
        Input(ids.STORE_TOUR_STATE, "data"),
        prevent_initial_call=True,
    )

    for cid, settable in SETTABLE.items():
        if settable.page_options:
            _register_pending(app, cid)
    return tours


def _register_pending(app: dash.Dash, cid: str) -> None:
    @app.callback(
        Output(cid, "value", allow_duplicate=True),
        Output(ids.STORE_TOUR_PENDING, "data", allow_duplicate=True),
        Input(cid, "options"),
        State(ids.STORE_TOUR_PENDING, "data"),
        prevent_initial_call=True,
    )
    def apply_pending(options: Any, pending: Any) -> tuple[Any, Any]:
        """The step's value for a picker whose options the page has just filled in."""
        pending = dict(pending or {})
        if cid not in pending:
            raise dash.exceptions.PreventUpdate
        values = [o.get("value") if isinstance(o, dict) else o for o in options or []]
        if pending[cid] not in values:  # not (yet) among the options: keep waiting
            raise dash.exceptions.PreventUpdate
        value = pending.pop(cid)
        return value, pending


def navigate(
    trigger: Any, picked: str | None, shown: dict[str, Any] | None, tours: dict[str, Tour]
) -> tuple[Tour, int] | None:
    """(tour, step index) to show after `trigger` (the picker, Previous, Next, Leave), or
    None to leave the tour; PreventUpdate when nothing changes."""
    shown = shown or {}
    tour = tours.get(shown.get("tour"))
    step = int(shown.get("step") or 0)
    if trigger == ids.DROPDOWN_TOUR_SELECT:
        if picked == shown.get("tour"):
            raise dash.exceptions.PreventUpdate
        tour, step = tours.get(picked), 0
    elif tour is None:
        raise dash.exceptions.PreventUpdate
    elif trigger == ids.BUTTON_TOUR_PREV:
        step = max(0, step - 1)
    elif trigger == ids.BUTTON_TOUR_NEXT:
        step += 1  # past the last step: Finish
    else:
        return None
    if tour is None or step >= len(tour.steps):
        return None
    return tour, step


def step_payload(
    tour: Tour, i: int, specs: dict[str, ControlSpec], controls: list[str], last: Any
) -> tuple[Any, ...]:
    """The outputs of going to step `i`: tour state, router request (a fresh nonce),
    pending picker values, the picker's value, then one value (or no_update) per control."""
    step = tour.steps[i]
    values = step_outputs(step, specs)
    pending = {c: v for c, v in step.options.items() if SETTABLE[c].page_options}
    nonce = int((last or {}).get("nonce") or 0) + 1
    return (
        {"tour": tour.id, "step": i, "focus": step.focus},
        {"state": dict(step.state), "nonce": nonce},
        pending,
        tour.id,
        *[values.get(cid, no_update) for cid in controls],
    )


def _set_prop(node: Any, cid: str, prop: str, value: Any) -> None:
    """Set `prop` of the component `cid` somewhere in the layout tree `node`."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif item is not None and not isinstance(item, str | int | float):
            if getattr(item, "id", None) == cid:
                setattr(item, prop, value)
            stack.append(getattr(item, "children", None))
