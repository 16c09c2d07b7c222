"""The HTML report: one self-contained page with the numbers, array shapes and figures of
exported analyses, rendered from the jinja2 template templates/report.html.j2 (autoescaped;
figures are inserted as markup made by plotly / kaleido)."""

from __future__ import annotations

import datetime as _dt
import functools
from typing import Any

import jinja2
from markupsafe import Markup

import svdcore as sc
from app.export.analyses import AnalysisExport
from app.export.files import static_image
from app.formatting import fmt_g

__all__ = ["html_report"]


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("app.export", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("report.html.j2")


def number_text(value: Any) -> str:
    """A number of the report's tables (escaped by the template)."""
    return fmt_g(value, 6) if isinstance(value, float) else str(value)


def html_report(
    results: list[AnalysisExport], *, title: str | None = None, static: bool = False
) -> str:
    """One self-contained HTML page: for each analysis its numbers (a table), the shapes of
    its arrays and its figures: interactive (plotly.js inlined once, so it opens offline),
    or with ``static`` SVG drawings made on the server by kaleido (no JavaScript at all,
    for printing and for journals)."""
    from plotly.offline import get_plotlyjs

    if not results:
        raise sc.DataError("nothing to report: no analysis was run.")
    first = results[0]
    sections = []
    for res in results:
        figures = []
        for name, fig in res.figures.items():
            if static:
                markup = static_image(fig, format="svg").decode("utf-8")
            else:
                markup = fig.to_html(full_html=False, include_plotlyjs=False)
            figures.append((name, Markup(markup)))
        sections.append(
            {
                "analysis": res.analysis,
                "model": res.model,
                "layer": res.layer,
                "numbers": [(k, number_text(v)) for k, v in res.numbers.items()],
                "arrays": [
                    (k, "×".join(map(str, a.shape)) or "scalar", str(a.dtype))
                    for k, a in res.arrays.items()
                ],
                "figures": figures,
            }
        )
    return _template().render(
        heading=title or f"svdscope report: {first.model} › {first.layer}",
        version=sc.__version__,
        when=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        static=static,
        plotlyjs=None if static else Markup(get_plotlyjs()),
        sections=sections,
    )
