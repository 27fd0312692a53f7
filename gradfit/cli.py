"""`gradfit` command line: a thin layer over the library.

    gradfit train | evaluate | predict | compare | noise-scale | batch-sweep | bench | memory | data
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .checks import SpelledError
from .commands.types import flag_spelling
from .parallel.comm import launched_by_mpi
from .parallel.guard import GUARDED
from .version import __version__


def _lazy(module: str):
    """A subcommand's module (it has add_arguments(parser) and run(args)), imported when used,
    so that ``gradfit memory`` does not load what ``gradfit train`` needs."""
    return importlib.import_module(module)


SUBCOMMANDS = {
    # name: (module with add_arguments(parser) and run(args), help)
    "train": ("gradfit.commands.train", "train a network (default: digits, Adam, early stopping)"),
    "evaluate": ("gradfit.commands.evaluate", "loss and metrics of a saved model on a dataset"),
    "predict": ("gradfit.commands.predict", "predictions of a saved model, written as CSV"),
    "compare": ("gradfit.commands.compare", "optimizer comparison on toy problems, a network, "
                "or second-order methods against first-order ones"),
    "noise-scale": ("gradfit.commands.noise_scale", "train and measure the gradient noise scale"),
    "batch-sweep": ("gradfit.commands.batch_sweep", "steps vs examples over batch sizes: critical batch size"),
    "bench": ("gradfit.commands.bench", "BLAS, training-throughput and optimizer-step benchmarks"),
    "memory": ("gradfit.commands.memory", "memory of parameters, Hessian, optimizer state, "
               "activations, and the bytes of each second-order method"),
    "data": ("gradfit.commands.data", "pack data into shards for out-of-core training; print an index"),
}


def build_parser(only=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradfit",
        description="Train deep networks the way the lecture 'Deep Networks Learning' teaches it.")
    parser.add_argument("--version", action="version", version=f"gradfit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or name == only:
            _lazy(module).add_arguments(p)
        p.set_defaults(_module=module, _parser=p)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if a in SUBCOMMANDS), None)
    parser = build_parser(only)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:      # --help, or a flag refused by argparse (status 2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(_lazy(args._module).run(args) or 0)
    except SpelledError as exc:   # named as this command's flags: --batch-size, not batch_size
        print(f"gradfit {args.command}: error: {exc.render(flag_spelling(args._parser))}",
              file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"gradfit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:     # outside training, or a second Ctrl-C during it
        print(f"gradfit {args.command}: stopped at once by Ctrl-C; files written before (a "
              "backup, a model) are kept", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``gradfit`` program (console script and ``python -m gradfit``).

    Under a plain ``mpiexec -n N gradfit ...`` each rank re-executes itself under the per-rank
    guard (`gradfit.parallel.guard`), its parent process, so that a rank killed by a signal
    (SIGKILL, the OOM killer) is named, as under ``python -m gradfit.parallel.launch``."""
    if launched_by_mpi() and not os.environ.get(GUARDED) and sys.platform.startswith("linux"):
        os.environ[GUARDED] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "gradfit.parallel.guard",
                                  sys.executable, "-m", "gradfit", *sys.argv[1:]])
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
