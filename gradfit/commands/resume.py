"""Resuming a `gradfit train` run from its backup: what a resume may change, and how.

A resume (``--backup`` on a folder holding the backup of an interrupted run) may change only
what does not change the run being resumed: ``--epochs`` (train longer or shorter), ``--patience``,
``--verbose``, ``--data-dir`` (the same files elsewhere) and the optimizer's hyperparameters
(``--learning-rate`` ..., applied from the resumed step on, unless they change the optimizer's
state arrays, e.g. ``amsgrad``). Everything else (data, split, seed, network and its init,
optimizer, batch size, schedule, task) must match the backup's run: an error names the setting
and both values.
Keras's BackupAndRestore expects the same compile and fit arguments; Lightning's
``ckpt_path`` restores the optimizer including its learning rate; here a changed rate is
applied and recorded in ``config.json`` under ``resumes``.
"""
from __future__ import annotations

import os
import shlex
import sys

import numpy as np

from .. import optimizers
from ..callbacks import Callback
from ..checks import ArgumentError, literal
from ..saving import read_archive
from . import optimizer_flags
from . import run_folder as folders
from .common import read_json

#: settings a resume must keep (see the module docstring), by their argparse dest
RESUME_MUST_MATCH = ("data", "labels", "split_seed", "x_key", "y_key", "label_column", "header",
                     "task", "num_classes", "val_fraction", "seed", "hidden", "activation", "init",
                     "dropout", "dtype", "optimizer", "batch_size", "schedule", "decay_epochs",
                     "end_lr_fraction")


def settings(args) -> dict:
    """The command's settings for config.json (optimizer flags not given are left out: the
    optimizer's own defaults are in ``optimizer_config``)."""
    unset = {k for k in optimizer_flags.declared() if getattr(args, k, None) is None}
    return {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in unset}


class RunStart(Callback):
    """Runs after `BackupAndRestore` restored a run (both ``run_last``): applies the learning
    rate the resuming command asked for, then writes config.json, so that a resume refused
    while restoring leaves config.json as it was."""

    run_last = True

    def __init__(self, write_config, learning_rate=None):
        super().__init__()
        self.write_config, self.learning_rate = write_config, learning_rate

    def on_train_begin(self, logs=None):
        if self.learning_rate is not None:
            self.model.optimizer.learning_rate = self.learning_rate
        self.write_config()


def changes(folder, args, opt) -> tuple[dict, dict]:
    """(saved config.json, {setting: [old, new]} that the resume changes, where it resumes);
    an error for a setting that must match (see the module docstring)."""
    config = read_json(os.path.join(folder, "config.json"))
    if config is None:
        raise ArgumentError("out", folder, "a run folder with its config.json",
                            "the backup cannot be checked without it: start afresh with "
                            "{overwrite}")
    position = read_archive(os.path.join(folder, folders.BACKUP))[0]["training"]
    epoch, step = position["epoch"], position["step"]
    at = f"epoch {epoch + 1}" + (f", step {step + 1}" if step else "")
    least = epoch + 1
    if args.epochs < least:
        raise ArgumentError("epochs", args.epochs, f"at least {least}: the backup resumes at {at}",
                            f"give {{epochs}} {max(least, config.get('epochs', least))} or more")
    new = settings(args)
    for key in RESUME_MUST_MATCH:
        if key in config and config[key] != new.get(key):
            raise ArgumentError(key, new.get(key), f"{literal(repr(config[key]))}, as in the run "
                                "being resumed",
                                f"resume with {{{key}}} {literal(config[key])}, or start afresh with "
                                "{overwrite} (or another {out})")
    changed = {k: [config.get(k), new[k]] for k in ("epochs", "patience", "verbose", "data_dir")
               if k in config and config.get(k) != new[k]}
    old_opt = config["optimizer_config"]["config"]
    new_opt = optimizers.serialize(opt)["config"]
    slots_old = sorted(optimizers.deserialize(config["optimizer_config"]).init(np.zeros(1)))
    slots_new = sorted(opt.init(np.zeros(1)))
    if slots_old != slots_new:
        raise ArgumentError("optimizer", args.optimizer, "an optimizer with the backup's state "
                            f"arrays {slots_old}", "resume with the optimizer settings of the "
                            "run being resumed, or start afresh with {overwrite}")
    changed.update({k: [old_opt.get(k), v] for k, v in new_opt.items() if old_opt.get(k) != v})
    return config, changed, at


def resume_command(args, folder) -> str:
    argv = [a for a in sys.argv[1:]] if sys.argv[1:2] == ["train"] else ["train"]
    if "--backup" not in argv:
        argv.append("--backup")
    if not args.out:
        argv += ["--out", folder]
    return "gradfit " + shlex.join(argv)
