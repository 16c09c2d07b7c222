"""Helpers shared by the views: alerts, guarded service calls, selection state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

from dash import html

from app import ids

__all__ = ["Selection", "alert", "attempt", "axis_title", "layer_title", "selection_ready"]

T = TypeVar("T")


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


def axis_title(axis: Any, fallback: str) -> str:
    """ "label (unit)" of an sc.Axis, or `fallback` when there is none."""
    if axis is None:
        return fallback
    return f"{axis.label} ({axis.unit})" if getattr(axis, "unit", "") else str(axis.label)
