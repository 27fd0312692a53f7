"""How a ``gradfit train`` run ended, said once and the same everywhere.

`Outcome` is read off the model's `TrainState` and the early-stopping callback after ``fit``:
how the run ended (``finished``, ``early_stop``, ``optimizer_stop``: a second-order method's
own stop, ``nan``, ``interrupted``), how far it got,
and which epoch's weights the model now holds (the best one when ``restore_best_weights``
restored it, else the last). The same facts go into ``results.json`` (valid JSON: NaN is
written as null), the final line printed, and the mark on ``history.png``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Outcome:
    ended: str                    # finished | early_stop | optimizer_stop | nan | interrupted
    epochs_run: int               # whole epochs trained (this run and the runs it resumed)
    stopped_at: str               # "epoch 7, step 30" (the step that failed, or the last taken)
    kept_epoch: int | None        # 0-based epoch whose weights the model holds; None: mid-epoch
    kept_at: str                  # those weights in words: "epoch 29", "epoch 7, step 29"
    kept_why: str                 # "best val_loss 0.0712" / "the last epoch" / ...
    message: str = ""             # why it stopped (the NaN sentence, the early-stopping rule)
    usable: bool = True           # weights and outputs finite: the model is saved

    def kept_text(self) -> str:
        return f"the weights of {self.kept_at} ({self.kept_why})"


def read_outcome(model, history, early_stopping, probe=None) -> Outcome:
    """The `Outcome` of the ``fit`` that just returned (see the module docstring).

    ``probe``: a few input rows; the model is usable when its weights and its outputs on them
    are finite (a NaN stop can leave finite weights whose outputs overflow)."""
    state = model.train_state
    epochs_run = len(history.history.get("loss", []))
    reason = state.stop_reason
    if reason == "callback" and early_stopping is not None and early_stopping.stopped_epoch:
        ended = "early_stop"
    elif reason in ("nan", "interrupted"):
        ended = reason
    elif reason == "optimizer":   # a second-order method stopped (converged, mu at mu_max)
        ended = "optimizer_stop"
    else:
        ended = "finished"
    if reason == "nan":            # the step that failed was not taken
        stopped_at = f"epoch {state.epoch + 1}, step {state.step + 1}"
    elif reason == "interrupted" and state.step:
        stopped_at = f"epoch {state.epoch + 1}, step {state.step}"
    else:                          # after a whole epoch
        stopped_at = f"epoch {state.epoch}"
    if (early_stopping is not None and early_stopping.restore_best_weights
            and early_stopping.best_weights is not None):
        best = early_stopping.best
        kept_epoch = early_stopping.best_epoch
        kept_why = f"best {early_stopping.monitor} {best:.4g}" if best is not None else "best epoch"
        kept_at = f"epoch {kept_epoch + 1}"
    elif state.step:               # stopped mid-epoch: the weights after the last step taken
        kept_epoch, kept_why = None, "the last step taken"
        kept_at = f"epoch {state.epoch + 1}, step {state.step}"
    else:
        kept_epoch = epochs_run - 1 if epochs_run else None
        kept_why = "the last epoch" if epochs_run else "no step was taken"
        kept_at = f"epoch {epochs_run}" if epochs_run else "the initialization"
    message = state.stop_message or ""
    if ended == "early_stop":
        message = (f"{early_stopping.monitor} did not improve for {early_stopping.patience} "
                   f"epochs")
    usable = bool(np.isfinite(np.asarray(model.params)).all())
    if usable and probe is not None:
        usable = bool(np.isfinite(model.predict(probe)).all())
    return Outcome(ended, epochs_run, stopped_at, kept_epoch, kept_at, kept_why, message, usable)


def final_line(outcome: Outcome, test: dict | None, folder: str, resume: str | None) -> str:
    """The one plain line that ends a run."""
    head = {"finished": f"Finished {outcome.epochs_run} epochs",
            "early_stop": f"Stopped early at {outcome.stopped_at} ({outcome.message})",
            "optimizer_stop": f"Stopped at {outcome.stopped_at} by the optimizer "
                              f"({outcome.message})",
            "nan": f"Stopped at {outcome.stopped_at}: the loss became non-finite",
            "interrupted": f"Interrupted at {outcome.stopped_at}"}[outcome.ended]
    if not outcome.usable:
        kept = f"no model saved: {outcome.kept_text()} give non-finite outputs"
    else:
        kept = f"kept {outcome.kept_text()} in {folder}/model.gfm"
    parts = [head, kept]
    if test:
        parts.append("test " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))
    line = "; ".join(parts) + "."
    if resume:
        line += f" Resume with: {resume}"
    return line


def results(outcome: Outcome, history: dict, test: dict | None) -> dict:
    """The body of ``results.json``."""
    kept = outcome.kept_epoch
    return {
        "ended": outcome.ended,
        "message": outcome.message or None,
        "epochs_run": outcome.epochs_run,
        "stopped_at": outcome.stopped_at,
        "kept_weights": {"epoch": None if kept is None else kept + 1, "why": outcome.kept_why,
                         "saved": outcome.usable},
        # the logged metrics of the epoch whose weights were kept (None: mid-epoch weights)
        "final": None if kept is None else {k: v[kept] for k, v in history.items() if kept < len(v)},
        "test": test,
    }
