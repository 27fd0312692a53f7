"""Training curves as a PNG (matplotlib, imported lazily: `pip install 'gradfit[plot]'`)."""
from __future__ import annotations

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def pyplot():
    """matplotlib.pyplot on the Agg backend, or an ImportError saying what to install."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'gradfit[plot]'") from exc
    return plt


def plot_history(history: dict, path, title=None) -> None:
    """Loss (left) and every other metric (right) per epoch, training and validation."""
    plt = pyplot()
    metrics = [k for k in history if not k.startswith("val_") and k not in ("loss", "learning_rate")]
    fig, axes = plt.subplots(1, 2 if metrics else 1, figsize=(10 if metrics else 5.5, 4), squeeze=False)
    for ax, keys in zip(axes[0], (["loss"], metrics)):
        for i, k in enumerate(keys):
            epochs = range(1, len(history[k]) + 1)
            ax.plot(epochs, history[k], color=OKABE_ITO[i % 8], label=f"train {k}")
            if f"val_{k}" in history:
                ax.plot(epochs, history[f"val_{k}"], color=OKABE_ITO[i % 8], ls="--", label=f"validation {k}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(", ".join(keys))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
