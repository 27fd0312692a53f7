"""Figures without pyplot: the shared palette, a Figure on the Agg canvas, training curves.

matplotlib is imported lazily (`pip install 'gradfit[plot]'`) and only through its object API
(Figure + Agg canvas), so gradfit never touches pyplot's global state or a notebook's backend.
"""
from __future__ import annotations

#: Okabe-Ito colour-blind-safe palette, yellow last (weak on white)
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: the same colours by name
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "blue": "#0072B2",
             "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000", "yellow": "#F0E442"}


def require_matplotlib():
    """(Figure, FigureCanvasAgg), or an ImportError saying what to install."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plots need matplotlib (and pillow for GIFs): "
                          "pip install 'gradfit[plot]'") from exc
    return Figure, FigureCanvasAgg


def figure(figsize=(6.4, 4.8), dpi=110, layout="constrained"):
    """A matplotlib Figure attached to the Agg canvas (write it with fig.savefig)."""
    Figure, Canvas = require_matplotlib()
    fig = Figure(figsize=figsize, dpi=dpi, layout=layout)
    Canvas(fig)
    return fig


#: the first-order optimizers' series order, so each keeps its colour in every figure
FIRST_ORDER_ORDER = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam")
#: second-order methods: dashed, each with its own marker, so that they stay apart from the
#: first-order series; their colours avoid SGD's, momentum's and Adam's (orange, sky, black),
#: the three they are drawn with in the second-order lab (Newton: a dark grey, off-palette)
SECOND_ORDER_STYLES = {
    "newton": {"color": "#555555", "marker": "*"},
    "lm": {"color": OKABE_ITO["vermillion"], "marker": "P"},
    "bfgs": {"color": OKABE_ITO["blue"], "marker": "X"},
    "lbfgs": {"color": OKABE_ITO["green"], "marker": "d"},
    "newton_cg": {"color": OKABE_ITO["purple"], "marker": "h"},
    "gauss_newton": {"color": OKABE_ITO["yellow"], "marker": "p"},
}


def style(i: int) -> dict:
    """Colour and marker of the i-th series."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}


def method_style(name: str, i: int) -> dict:
    """Colour, marker and line style of method ``name``, the i-th series: a second-order
    method's own dashed style (`SECOND_ORDER_STYLES`); a first-order optimizer's
    `style` by its place in `FIRST_ORDER_ORDER`; else `style(i)`; both solid."""
    if name in SECOND_ORDER_STYLES:
        return {**SECOND_ORDER_STYLES[name], "ls": "--"}
    if name in FIRST_ORDER_ORDER:
        return {**style(FIRST_ORDER_ORDER.index(name)), "ls": "-"}
    return {**style(i), "ls": "-"}


def plot_history(history: dict, path, title=None, mark=None, mark_label=None) -> None:
    """Loss (left) and every other metric (right) per epoch, training and validation.

    ``mark``: a 0-based epoch drawn as a vertical line on both panels (the epoch whose weights
    were kept), labelled ``mark_label``."""
    metrics = [k for k in history if not k.startswith("val_") and k not in ("loss", "learning_rate")]
    fig = figure((10 if metrics else 5.5, 4))
    axes = fig.subplots(1, 2 if metrics else 1, squeeze=False)
    for ax, keys in zip(axes[0], (["loss"], metrics)):
        for i, k in enumerate(keys):
            epochs = range(1, len(history[k]) + 1)
            color = PALETTE[i % len(PALETTE)]
            ax.plot(epochs, history[k], color=color, label=f"train {k}")
            if f"val_{k}" in history:
                ax.plot(epochs, history[f"val_{k}"], color=color, ls="--", label=f"validation {k}")
        if mark is not None:
            ax.axvline(mark + 1, color=OKABE_ITO["black"], lw=1, ls=":",
                       label=mark_label or f"epoch {mark + 1}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(", ".join(keys))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.savefig(path)
