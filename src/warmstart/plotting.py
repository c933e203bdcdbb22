"""matplotlib for the reports, imported only when a chart is drawn."""

from __future__ import annotations

import io
from typing import Any

__all__ = ["inline_svg", "pyplot"]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def inline_svg(fig: Any) -> str:
    """The figure as an <svg> element to put inline in HTML (the figure is closed)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog
