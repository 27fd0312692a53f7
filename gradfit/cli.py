"""`gradfit` command line: a thin layer over the library.

    gradfit train | evaluate | predict | compare | noise-scale | batch-sweep | bench | memory
"""
from __future__ import annotations

import argparse
import sys


def _lazy(module: str):
    """A subcommand's module (it has add_arguments(parser) and run(args)), imported when used."""
    import importlib
    return importlib.import_module(module)


SUBCOMMANDS = {
    # name: (module with add_arguments(parser) and run(args), help)
    "train": ("gradfit.commands.train", "train a network (default: digits, Adam, early stopping)"),
    "evaluate": ("gradfit.commands.evaluate", "loss and metrics of a saved model on a dataset"),
    "predict": ("gradfit.commands.predict", "predictions of a saved model, written as CSV"),
    "compare": ("gradfit.commands.compare", "optimizer comparison on toy problems or a network"),
    "noise-scale": ("gradfit.commands.noise_scale", "train and measure the gradient noise scale"),
    "batch-sweep": ("gradfit.commands.batch_sweep", "steps vs examples over batch sizes: critical batch size"),
    "bench": ("gradfit.bench", "BLAS, training-throughput and optimizer-step benchmarks"),
    "memory": ("gradfit.memory", "memory of parameters, Hessian, optimizer state, activations"),
}


def build_parser(only=None) -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(
        prog="gradfit",
        description="Train deep networks the way the lecture 'Deep Networks Learning' teaches it.")
    parser.add_argument("--version", action="version", version=f"gradfit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or name == only:
            _lazy(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if a in SUBCOMMANDS), None)
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(_lazy(args._module).run(args) or 0)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"gradfit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
