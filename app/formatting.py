"""How numbers are written on the page, in the CLI and in reports (one place for each format).

Pure functions of a float; nothing of the app is imported here.
"""

from __future__ import annotations

import math

__all__ = ["fmt_compact", "fmt_cond", "fmt_g", "fmt_value"]


def fmt_g(x: float | None, digits: int = 4, *, missing: str = "n/a", infinite: str = "∞") -> str:
    """`x` to `digits` significant digits (``%g``); `missing` for None / NaN, `infinite` for
    ±inf (the sign kept)."""
    if x is None or math.isnan(x):
        return missing
    if math.isinf(x):
        return infinite if x > 0 else f"-{infinite}"
    return f"{x:.{digits}g}"


def fmt_compact(x: float | None) -> str:
    """A short cell of the layer table: 3 significant digits, e-notation outside
    [0.01, 10^4), whole numbers from 100 on."""
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞"
    if abs(x) >= 1e4 or abs(x) < 1e-2:
        return f"{x:.2e}"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def fmt_cond(x: float) -> str:
    """A condition number: 4 significant digits, e-notation from 10^4."""
    if math.isnan(x):
        return "n/a"
    return f"{x:.4g}" if x < 1e4 else f"{x:.3e}"


def fmt_value(v: float) -> str:
    """A value of the surgery figures: 4 significant digits, e-notation below 10^-3."""
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
