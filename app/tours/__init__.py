"""Guided tours: short walkthroughs of the example networks, one JSON file per tour.

A tour is data, not code (``app/tours/*.json``, listed in file-name order)::

    {
      "id": "deernet",
      "title": "DEERNet: a digital filter and Chebyshev polynomials",
      "paper": "Amey, Keeley, Choudhury & Kuprov, PNAS 2021",
      "summary": "What the tour shows (the picker's tooltip).",
      "steps": [
        {
          "title": "Descrambled on DEER traces",
          "text": "One or two sentences for the audience, numbers checked on the zoo.",
          "state": {"model": "deernet", "layer": "fc1", "tab": "descramble"},
          "options": {"radio-descramble-source": "dataset"},
          "focus": "graph-descramble-raw"
        }
      ]
    }

``state`` is what the URL holds (model, layer, tab, view, sample, compare,
compare_layer; model and tab are required, the rest falls back as a link would) and goes
to the page router, which resolves it like a link. ``options`` sets controls of the
step's own tab, only those in ``SETTABLE`` (component ids of app/ids.py); every settable
control of that tab that the step does not name goes back to its default, so a step
looks the same however the presenter got there. ``focus`` (optional) is a component of
the tab to scroll to. Tours use the exact (closed-form) methods only: background jobs
have no place in a talk. Not settable, because the page rewrites them: the fit order
(reset with the fit family), the surgery split (follows the layer: name the layer) and
the keep-top-k slider (follows the rank).

`read_tours` checks the files (a `TourError` names the file and the step);
`check_against_layout` checks option values against the page's controls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import ids

__all__ = [
    "SETTABLE",
    "STATE_KEYS",
    "TOURS_DIR",
    "ControlSpec",
    "Settable",
    "Step",
    "Tour",
    "TourError",
    "check_against_layout",
    "component_tabs",
    "control_specs",
    "load_tours",
    "read_tour",
    "read_tours",
    "step_outputs",
]

TOURS_DIR = Path(__file__).resolve().parent
STATE_KEYS = ("model", "layer", "tab", "view", "sample", "compare", "compare_layer")
MAX_TEXT = 480  # characters: one or two sentences a presenter can read out
MAX_TITLE = 90
_TOUR_KEYS = {"id", "title", "paper", "summary", "steps"}
_STEP_KEYS = {"title", "text", "state", "options", "focus"}


class TourError(ValueError):
    """A tour file that cannot be used, with the file and step in the message."""


@dataclass(frozen=True)
class Settable:
    """A control a tour step may set: the tab it lives on and the kind of value.

    kind: "choice" (one of the control's options), "choices" (a list of them), "int",
    "number" or "text". ``only``: for choice kinds, the values tours may use (default:
    all the control's options). ``page_options``: a dropdown whose options the page fills
    in for the selected model (a class picker): a step that does not name it leaves it
    alone, and a named value is set again once the options arrive (a Dash dropdown drops
    a value that is not among its options). Other controls a step does not name go back
    to their defaults."""

    tab: str
    kind: str
    only: tuple[Any, ...] = ()
    page_options: bool = False
    minimum: float | None = None


SETTABLE: dict[str, Settable] = {
    ids.RADIO_WEIGHTS_RANGE: Settable(ids.TAB_WEIGHTS, "choice"),
    ids.SLIDER_VECTORS_COUNT: Settable(ids.TAB_VECTORS, "int", minimum=1),
    ids.DROPDOWN_VECTORS_FIT_FAMILY: Settable(ids.TAB_VECTORS, "choice"),
    ids.INPUT_VECTORS_FIT_SPLIT: Settable(ids.TAB_VECTORS, "text"),
    ids.RADIO_VECTORS_FIT_SIDE: Settable(ids.TAB_VECTORS, "choice"),
    ids.RADIO_DESCRAMBLE_SOURCE: Settable(ids.TAB_DESCRAMBLE, "choice"),
    ids.INPUT_DESCRAMBLE_SAMPLES: Settable(ids.TAB_DESCRAMBLE, "int", minimum=1),
    ids.RADIO_DESCRAMBLE_POSITION: Settable(ids.TAB_DESCRAMBLE, "choice"),
    ids.RADIO_DESCRAMBLE_CRITERION: Settable(
        ids.TAB_DESCRAMBLE, "choice", only=("smoothness", "mds")
    ),
    ids.RADIO_DESCRAMBLE_STENCIL: Settable(ids.TAB_DESCRAMBLE, "choice"),
    ids.RADIO_DESCRAMBLE_METHOD: Settable(ids.TAB_DESCRAMBLE, "choice", only=("exact",)),
    ids.CHECKLIST_DESCRAMBLE_DET: Settable(ids.TAB_DESCRAMBLE, "choices"),
    ids.CHECKLIST_DESCRAMBLE_FFT: Settable(ids.TAB_DESCRAMBLE, "choices"),
    ids.INPUT_SUBSPACES_RTOL: Settable(ids.TAB_SUBSPACES, "number", minimum=0),
    ids.RADIO_SUBSPACES_FOCUS: Settable(ids.TAB_SUBSPACES, "choice"),
    ids.DROPDOWN_SUBSPACES_CLASS: Settable(ids.TAB_SUBSPACES, "int", page_options=True, minimum=0),
    ids.INPUT_SUBSPACES_SAMPLE: Settable(ids.TAB_SUBSPACES, "int", minimum=0),
    ids.DROPDOWN_INVERSION_TARGET: Settable(ids.TAB_INVERSION, "int", page_options=True, minimum=0),
    ids.RADIO_INVERSION_METHOD: Settable(ids.TAB_INVERSION, "choice", only=("pseudo-inverse",)),
    ids.INPUT_SURGERY_OUTPUT: Settable(ids.TAB_SURGERY, "int", minimum=0),
    ids.INPUT_SURGERY_VECTORS: Settable(ids.TAB_SURGERY, "int", minimum=1),
    ids.RADIO_SURGERY_RANK: Settable(ids.TAB_SURGERY, "choice"),
    ids.SLIDER_COMPARE_K: Settable(ids.TAB_COMPARE, "int", minimum=1),
}
"""Every control a tour may set (property "value"), by component id."""


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    state: dict[str, str]  # URL keys -> values, as the router reads them
    options: dict[str, Any] = field(default_factory=dict)  # component id -> value
    focus: str | None = None  # id of a component of the tab to scroll to (a graph)


@dataclass(frozen=True)
class Tour:
    id: str
    title: str
    paper: str
    steps: tuple[Step, ...]
    summary: str = ""
    source: str = ""  # the file it came from

    @property
    def models(self) -> set[str]:
        """Every model a step opens (as A or as the Compare tab's B)."""
        found = {s.state["model"] for s in self.steps}
        return found | {s.state["compare"] for s in self.steps if "compare" in s.state}


def _zoo_names() -> list[str]:
    import svdcore.zoo as zoo  # the engine's registry; tours open example networks only

    return zoo.names()


def _text(value: Any, where: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TourError(f"{where}: '{what}' must be a non-empty string.")
    if len(value) > limit:
        raise TourError(
            f"{where}: '{what}' has {len(value)} characters; keep it under {limit} "
            "(one or two sentences)."
        )
    return value.strip()


def _state(raw: Any, where: str, zoo: list[str]) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise TourError(f"{where}: 'state' must be an object with at least model and tab.")
    unknown = sorted(set(raw) - set(STATE_KEYS))
    if unknown:
        raise TourError(
            f"{where}: unknown state key(s) {', '.join(unknown)}; use {', '.join(STATE_KEYS)}."
        )
    for key in ("model", "tab"):
        if key not in raw:
            raise TourError(f"{where}: the state names no {key}.")
    state: dict[str, str] = {}
    for key, value in raw.items():
        if key == "sample":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise TourError(f"{where}: sample must be a non-negative integer, not {value!r}.")
            state[key] = str(value)
            continue
        if not isinstance(value, str) or not value:
            raise TourError(f"{where}: state '{key}' must be a non-empty string.")
        state[key] = value
    if state["tab"] not in ids.TABS:
        raise TourError(
            f"{where}: unknown tab '{state['tab']}'; the tabs are {', '.join(ids.TABS)}."
        )
    for key in ("model", "compare"):
        if key in state and state[key] not in zoo:
            raise TourError(
                f"{where}: unknown model '{state[key]}'; tours open the example networks "
                f"({', '.join(zoo)})."
            )
    return state


def _value(cid: str, spec: Settable, value: Any, where: str) -> Any:
    def bad(expected: str) -> TourError:
        return TourError(f"{where}: option '{cid}' must be {expected}, not {value!r}.")

    if spec.kind == "choices":
        if not isinstance(value, list) or len(set(map(str, value))) != len(value):
            raise bad("a list of distinct values")
        if spec.only and any(v not in spec.only for v in value):
            raise bad(f"a list of {', '.join(map(repr, spec.only))}")
    elif spec.kind == "choice":
        if spec.only and value not in spec.only:
            raise bad(f"one of {', '.join(map(repr, spec.only))} in a tour")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise bad("a single value")
    elif spec.kind in ("int", "number"):
        number_types = (int,) if spec.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, number_types):
            raise bad("an integer" if spec.kind == "int" else "a number")
        if spec.minimum is not None and value < spec.minimum:
            raise bad(f"at least {spec.minimum:g}")
    elif spec.kind == "text" and not isinstance(value, str):
        raise bad("a string")
    return value


def _options(raw: Any, tab: str, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TourError(f"{where}: 'options' must be an object of component id -> value.")
    options = {}
    for cid, value in raw.items():
        spec = SETTABLE.get(cid)
        if spec is None:
            raise TourError(
                f"{where}: '{cid}' is not a control a tour can set; settable controls: "
                f"{', '.join(sorted(SETTABLE))}."
            )
        if spec.tab != tab:
            raise TourError(
                f"{where}: '{cid}' belongs to the {spec.tab} tab, but the step opens {tab}."
            )
        options[cid] = _value(cid, spec, value, where)
    return options


def read_tour(path: Path, zoo: list[str] | None = None) -> Tour:
    """One tour file -> Tour; TourError (naming the file and the step) when it is wrong."""
    zoo = _zoo_names() if zoo is None else zoo
    name = path.name
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TourError(f"{name}: cannot read this tour file ({err}).") from err
    if not isinstance(raw, dict):
        raise TourError(f"{name}: a tour file holds one JSON object.")
    unknown = sorted(set(raw) - _TOUR_KEYS)
    if unknown:
        raise TourError(f"{name}: unknown key(s) {', '.join(unknown)}.")
    tour_id = raw.get("id")
    if not isinstance(tour_id, str) or not tour_id.replace("-", "").isalnum():
        raise TourError(f"{name}: 'id' must be a short name of letters, digits and '-'.")
    title = _text(raw.get("title"), name, "title", MAX_TITLE)
    paper = _text(raw.get("paper"), name, "paper", MAX_TEXT)
    summary = _text(raw["summary"], name, "summary", MAX_TEXT) if "summary" in raw else ""
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise TourError(f"{name}: 'steps' must be a non-empty list.")
    steps = []
    for i, step in enumerate(steps_raw, start=1):
        where = f"{name}, step {i}"
        if not isinstance(step, dict):
            raise TourError(f"{where}: a step is an object with title, text, state, options.")
        unknown = sorted(set(step) - _STEP_KEYS)
        if unknown:
            raise TourError(f"{where}: unknown key(s) {', '.join(unknown)}.")
        step_title = _text(step.get("title"), where, "title", MAX_TITLE)
        where = f"{name}, step {i} ({step_title})"
        text = _text(step.get("text"), where, "text", MAX_TEXT)
        state = _state(step.get("state"), where, zoo)
        options = _options(step.get("options"), state["tab"], where)
        focus = step.get("focus")
        if focus is not None and (not isinstance(focus, str) or not focus):
            raise TourError(f"{where}: 'focus' must be the id of a component of the tab.")
        steps.append(Step(step_title, text, state, options, focus))
    return Tour(tour_id, title, paper, tuple(steps), summary, source=name)


def read_tours(directory: Path | None = None) -> list[Tour]:
    """Every ``*.json`` tour of `directory` (default: TOURS_DIR, the shipped tours), in
    file-name order; ids must be unique."""
    directory = TOURS_DIR if directory is None else directory
    zoo = _zoo_names()
    tours: list[Tour] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        tour = read_tour(path, zoo)
        if tour.id in seen:
            raise TourError(f"{path.name}: the id '{tour.id}' is already used by {seen[tour.id]}.")
        seen[tour.id] = path.name
        tours.append(tour)
    return tours


# ---------------------------------------------------------------------- the page's controls
def component_tabs(layout: Any) -> dict[str, str | None]:
    """Every component id (a string) of a page layout -> the tab it is on (None: outside
    the tabs)."""
    found = {}
    for node, tab in _walk(layout, None):
        cid = getattr(node, "id", None)
        if isinstance(cid, str):
            found[cid] = tab
    return found


@dataclass(frozen=True)
class ControlSpec:
    """A settable control as the page builds it: its tab, default value and options."""

    tab: str | None
    default: Any
    options: tuple[Any, ...]  # the option values, () when the page fills them in later


def _walk(node: Any, tab: str | None) -> Iterator[tuple[Any, str | None]]:
    if isinstance(node, list | tuple):
        for child in node:
            yield from _walk(child, tab)
        return
    if node is None or isinstance(node, str | int | float):
        return
    yield node, tab
    if type(node).__name__ == "Tab" and getattr(node, "value", None) is not None:
        tab = node.value
    yield from _walk(getattr(node, "children", None), tab)


def _option_value(option: Any) -> Any:
    return option.get("value") if isinstance(option, dict) else option


def control_specs(layout: Any) -> dict[str, ControlSpec]:
    """The SETTABLE controls found in a page layout (as build_layout returns it)."""
    found: dict[str, ControlSpec] = {}
    for node, tab in _walk(layout, None):
        cid = getattr(node, "id", None)
        if isinstance(cid, str) and cid in SETTABLE:
            options = tuple(_option_value(o) for o in (getattr(node, "options", None) or []))
            found[cid] = ControlSpec(tab, getattr(node, "value", None), options)
    return found


def check_against_layout(tours: Iterable[Tour], layout: Any) -> dict[str, ControlSpec]:
    """Check that every SETTABLE control is on its tab, every option value is one of the
    control's options and every focus is a component of the step's tab; return the
    controls' specs (TourError otherwise)."""
    specs = control_specs(layout)
    tabs = component_tabs(layout)
    for cid, settable in SETTABLE.items():
        spec = specs.get(cid)
        if spec is None or spec.tab != settable.tab:
            where = "is missing from the page" if spec is None else f"is on the {spec.tab} tab"
            raise TourError(f"The settable control '{cid}' {where}, not on {settable.tab}.")
    for tour in tours:
        for i, step in enumerate(tour.steps, start=1):
            where = f"{tour.source}, step {i} ({step.title})"
            if step.focus is not None and tabs.get(step.focus, "") != step.state["tab"]:
                found = (
                    "is not a component of the page"
                    if step.focus not in tabs
                    else (f"is on the {tabs[step.focus]} tab")
                )
                raise TourError(
                    f"{where}: the focus '{step.focus}' {found}, not on {step.state['tab']}."
                )
            for cid, value in step.options.items():
                allowed = specs[cid].options
                kind = SETTABLE[cid].kind
                values = value if kind == "choices" else [value] if kind == "choice" else []
                for v in values:
                    if allowed and v not in allowed:
                        raise TourError(
                            f"{where}: {v!r} is not an option of '{cid}' "
                            f"({', '.join(map(repr, allowed))})."
                        )
    return specs


def load_tours(layout: Any, directory: Path | None = None) -> tuple[list[Tour], dict]:
    """read_tours + check_against_layout: the tours and the settable controls' specs."""
    tours = read_tours(directory)
    return tours, check_against_layout(tours, layout)


def step_outputs(step: Step, specs: dict[str, ControlSpec]) -> dict[str, Any]:
    """The values a step writes to the controls of its tab: its own options, and the
    default of every other resettable control of that tab (others: not written)."""
    out: dict[str, Any] = {}
    for cid, settable in SETTABLE.items():
        if settable.tab != step.state["tab"]:
            continue
        if cid in step.options:
            out[cid] = step.options[cid]
        elif not settable.page_options:
            out[cid] = specs[cid].default
    return out
