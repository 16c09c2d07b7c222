"""Results that leave the dashboard: the arrays and numbers of one analysis of one layer
(NPZ, CSV) and a self-contained HTML report with the page's figures.

    analyses.py   the registry of analyses (`ANALYSES`, `export_analysis`), run through the
                  page's own cached `Services`; figures from app.figures (never the views)
    files.py      .npz (no pickle), CSV zip, figures drawn on the server (kaleido)
    report.py     the HTML report, from templates/report.html.j2 (jinja2, autoescaped)
"""

from app.export.analyses import (
    ANALYSES,
    TAB_ANALYSES,
    AnalysisExport,
    ExportOptions,
    export_analysis,
)
from app.export.files import csv_zip, npz_bytes, save_npz, static_image
from app.export.report import html_report

__all__ = [
    "ANALYSES",
    "TAB_ANALYSES",
    "AnalysisExport",
    "ExportOptions",
    "csv_zip",
    "export_analysis",
    "html_report",
    "npz_bytes",
    "save_npz",
    "static_image",
]
