"""argparse types that check a flag's value at parse time, with `gradfit.checks`' messages.

``p.add_argument("--batch-size", type=integer(1))`` turns ``--batch-size 0`` into
``gradfit train: error: argument --batch-size: must be an integer >= 1, got 0`` before
anything else happens (exit status 2).
"""
from __future__ import annotations

import argparse

from ..checks import ArgumentError, check_int, check_number


def _typed(parse, check, label):
    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {label}, got {text!r}") from None
        try:
            return check("value", value)
        except ArgumentError as exc:
            raise argparse.ArgumentTypeError(exc.requirement()) from None
    convert.__name__ = label
    return convert


def integer(minimum=None, maximum=None):
    """An int within [minimum, maximum]."""
    return _typed(int, lambda n, v: check_int(n, v, minimum, maximum), "an integer")


def integer_list(minimum=None, maximum=None):
    """A comma-separated, non-empty list of ints, each within [minimum, maximum]."""
    def parse(text):
        items = [t.strip() for t in text.split(",")]
        if not text.strip() or "" in items:
            raise ValueError(text)
        return tuple(int(t) for t in items)

    def check(name, values):
        return tuple(check_int(name, v, minimum, maximum) for v in values)
    return _typed(parse, check, "a comma-separated list of integers")


def number(minimum=None, maximum=None, *, above=None, below=None):
    """A finite float within the bounds (see `gradfit.checks.check_number`)."""
    return _typed(float, lambda n, v: check_number(n, v, minimum, maximum, above=above,
                                                   below=below), "a number")


def flag_spelling(parser):
    """``spell(name)``: the long flag of the option whose dest is ``name`` (else ``name``)."""
    flags = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs:
            flags[action.dest] = longs[0]
    return lambda name: flags.get(name, name)
