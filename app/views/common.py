"""Helpers shared by the views: alerts, guarded service calls, selection state."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, TypedDict, TypeVar

from dash import dash_table, dcc, html

from app import ids
from app.figures.theme import axis_title

__all__ = [
    "CLICKABLE_CELLS",
    "DEFAULT_K",
    "MAX_K",
    "Selection",
    "alert",
    "attempt",
    "axis_title",
    "data_table",
    "graph_panel",
    "k_slider",
    "layer_title",
    "number",
    "number_field",
    "selection_ready",
    "stat_box",
    "stat_maker",
]

T = TypeVar("T")

DEFAULT_K = 8  # singular vectors a view shows (or the subspace it compares) at first
MAX_K = 32


class Selection(TypedDict, total=False):
    model: str | None
    layer: str | None
    view: str
    tab: str
    dataset: str | None
    sample: str
    compare: str  # the Compare tab's second model
    compare_layer: str


def alert(message: str, *, kind: str = "error", title: str | None = None) -> html.Div:
    """A visible message box; kind is "error", "warning" or "info"."""
    heading = title or {"error": "Cannot show this", "warning": "Note", "info": ""}.get(kind, "")
    children: list[Any] = []
    if heading:
        children.append(html.Strong(heading + ": "))
    children.append(html.Span(message, className="alert-text"))
    return html.Div(children, className=f"alert alert-{kind}", role="alert")


def attempt(services: Any, thunk: Callable[[], T]) -> tuple[T | None, html.Div | None]:
    """Run `thunk`; an exception becomes (None, alert(sentence)) instead of a traceback."""
    try:
        return thunk(), None
    except Exception as err:
        return None, alert(services.error_message(err))


def selection_ready(selection: Selection | None, tab: str) -> bool:
    """True when `tab` is the visible tab and a layer is chosen (views compute only then)."""
    return bool(selection) and selection.get("tab", ids.TAB_WEIGHTS) == tab


def layer_title(selection: Selection) -> str:
    view = selection.get("view") or "default"
    suffix = "" if view == "default" else f" ({view})"
    return f"{selection.get('layer')}{suffix}"


def stat_box(label: str, value: str, detail: str, key: str, *, view: str) -> html.Div:
    """A number box: label, value (id `ids.stat_id(view, key)`) and how it is defined."""
    return html.Div(
        [
            html.Div(label, className="stat-label"),
            html.Div(value, className="stat-value", id=ids.stat_id(view, key)),
            html.Div(detail, className="stat-detail"),
        ],
        className="stat",
    )


def stat_maker(view: str) -> Callable[..., html.Div]:
    """`stat_box` for one view: ``_stat(label, value, detail, key)``."""
    return partial(stat_box, view=view)


def graph_panel(graph_id: str) -> dcc.Loading:
    """A graph with the placeholder figure, behind a loading indicator that waits 300 ms."""
    from app.figures import placeholder_figure

    return dcc.Loading(
        dcc.Graph(id=graph_id, figure=placeholder_figure(), config={"displaylogo": False}),
        type="dot",
        delay_show=300,
    )


def number_field(cid: str, label: str, value: Any, **kwargs: Any) -> html.Label:
    """A labelled number input (debounced: the value is sent on Enter or blur)."""
    return html.Label(
        [
            html.Span(label, className="inline-label"),
            dcc.Input(id=cid, type="number", value=value, debounce=True, **kwargs),
        ],
        className="number-field",
    )


def number(value: Any, kind: Callable[[Any], T], default: T | None = None) -> T | None:
    """A control's value as `kind` (int, float), `default` when empty or unreadable."""
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        return default


_TABLE_CELL = {
    "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
    "fontSize": "12px",
    "padding": "4px 8px",
    "textAlign": "right",
}
_TABLE_HEADER = {"fontWeight": 600, "backgroundColor": "#f5f7f9", "color": "#37474f"}
CLICKABLE_CELLS = {"cursor": "pointer", "border": "none", "borderBottom": "1px solid #eceff1"}


def data_table(
    cid: str, columns: list[dict[str, Any]], *, cell: dict[str, Any], **options: Any
) -> dash_table.DataTable:
    """An empty table in the page's style (list view, one page; numbers right-aligned
    unless `cell` says otherwise); `options` are further DataTable properties.

    DataTable on purpose (AG Grid is not installed); its deprecation note is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"(?s).*DataTable will be removed", category=DeprecationWarning
        )
        return dash_table.DataTable(
            id=cid,
            columns=columns,
            data=[],
            page_action="none",
            style_as_list_view=True,
            style_cell={**_TABLE_CELL, **cell},
            style_header=_TABLE_HEADER,
            **options,
        )


def k_slider(cid: str, label: str, *, marks: tuple[int, ...], class_name: str) -> html.Div:
    """A labelled slider for a number k of singular vectors, 1 to MAX_K (DEFAULT_K first)."""
    return html.Div(
        [
            html.Label(label, htmlFor=cid),
            dcc.Slider(
                id=cid,
                min=1,
                max=MAX_K,
                step=1,
                value=DEFAULT_K,
                marks={i: str(i) for i in marks},
                tooltip={"placement": "bottom"},
            ),
        ],
        className=class_name,
    )
