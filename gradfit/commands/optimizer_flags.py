"""The optimizer flags of `gradfit train`, derived from the optimizers' declarations.

Every hyperparameter that a registered optimizer declares is a flag: ``beta_2`` is
``--beta-2 X``, a True/False one is ``--amsgrad`` / ``--no-amsgrad``; ``--lr`` is
``--learning-rate``.  A flag not given leaves the optimizer's own default; ``--opt-arg
NAME=VALUE`` sets a hyperparameter too.  A flag the chosen optimizer does not take is an
error that lists the flags it takes, raised before anything is printed or written.  The
second-order methods (``--optimizer lm`` ...) are registered the same way: ``--mu``,
``--history``, ``--allow-mini-batch`` ... are their declared hyperparameters.
"""
from __future__ import annotations

import argparse

from .. import optimizers
from ..checks import ArgumentError
from ..optimizers.hyper import Flag


def classes() -> list:
    """Every optimizer class ``--optimizer`` can name: first-order, then second-order."""
    return [*optimizers.OPTIMIZERS.values(), *optimizers.SECOND_ORDER.values()]


def optimizer_names() -> list:
    return [*optimizers.NAMES, *optimizers.SECOND_ORDER]


def declared() -> dict:
    """``{name: [(Hyper, optimizer class name), ...]}`` over every registered optimizer, in
    the order they declare them."""
    out = {}
    for cls in classes():
        for h in cls.hyperparameters:
            out.setdefault(h.name, []).append((h, cls.__name__))
    return out


def _help(takers) -> str:
    """Each distinct doc with the optimizers that declare it: ``doc [SGD, RMSprop]; ...``."""
    docs = {}
    for h, owner in takers:
        docs.setdefault(h.doc, []).append(owner)
    every = len(classes())
    return "; ".join(f"{doc} [{'all' if len(owners) == every else ', '.join(owners)}]"
                     for doc, owners in docs.items()) + " (default: the optimizer's own)"


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(p) -> None:
    """``--optimizer``, one flag per declared hyperparameter, and ``--opt-arg``."""
    p.add_argument("--optimizer", default="adam", choices=optimizer_names(), metavar="NAME",
                   help=f"{', '.join(optimizers.NAMES)}; second order (full batch, float64): "
                        f"{', '.join(optimizers.SECOND_ORDER)} (default adam)")
    for name, takers in declared().items():
        names = ["--lr", flag(name)] if name == "learning_rate" else [flag(name)]
        kind = takers[0][0].kind
        kwargs = {"action": argparse.BooleanOptionalAction} if isinstance(kind, Flag) \
            else {"type": _parse(name, kind), "metavar": "X"}
        p.add_argument(*names, dest=name, default=None, help=_help(takers), **kwargs)
    p.add_argument("--opt-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="any optimizer argument by name, repeatable: --opt-arg beta_2=0.99 "
                        "--opt-arg amsgrad=true")


def _parse(name, kind):
    """argparse type: the text as a number (or as the kind's own ``parse`` reads it: an
    integer, a word) checked by the declared kind at parse time (``none`` for an optional
    one), so that a bad value stops before anything else."""
    parse = getattr(kind, "parse", float)

    def convert(text):
        if text.strip().lower() == "none" and getattr(kind, "optional", False):
            return None
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind.expected()}, got {text!r}") from None
        try:
            return kind.check(name, value)
        except ArgumentError as exc:
            raise argparse.ArgumentTypeError(exc.requirement()) from None
    convert.__name__ = "number"
    return convert


def given(args) -> dict:
    """The hyperparameter flags given on the command line: ``{name: value}``."""
    return {name: getattr(args, name) for name in declared() if getattr(args, name, None) is not None}


def build(args):
    """The optimizer the flags describe; ValueError naming what the optimizer takes."""
    cls, preset = optimizers.lookup(args.optimizer)
    takes = [h.name for h in cls.hyperparameters]
    config = given(args)
    wrong = [name for name in config if name not in takes]
    if wrong:
        raise ValueError(f"{args.optimizer} takes: {', '.join(flag(n) for n in takes)} "
                         f"(given: {', '.join(flag(n) for n in wrong)})")
    for item in args.opt_arg:
        name, sep, value = item.partition("=")
        if not sep or name not in takes:
            raise ValueError(f"--opt-arg {item!r}: expected NAME=VALUE with NAME one of "
                             f"{', '.join(takes)} for {cls.__name__}")
        config[name] = _value(value)
    return cls(**{**preset, **config})


def _value(text):
    """'true'/'false'/'none' or a number, else the text itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return int(text) if low.lstrip("-").isdigit() else float(text)
    except ValueError:
        return text
