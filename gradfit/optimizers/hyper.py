"""Hyperparameters declared once per class; constructor, checks, config and repr derived.

A class lists its hyperparameters, in Keras's positional order, as a tuple of ``Hyper``::

    class Adadelta(Optimizer):
        hyperparameters = declare(
            learning_rate(1.0),
            Hyper("rho", 0.95, UNIT, "decay of the averages of g**2 and dx**2", torch="rho"),
            Hyper("epsilon", 1e-6, POSITIVE, "added inside both roots", torch="eps"))

and ``Declared`` derives from it:

* ``__init__`` with exactly that signature (``inspect.signature`` shows it; those marked
  ``keyword_only`` come after ``*``), every argument checked;
* the same check on every later assignment, ``opt.learning_rate = 0.01`` included (callbacks
  do that), with the value and the allowed range in the message:
  ``beta_1 must be a number in [0, 1), got 1.2`` (`gradfit.checks.ArgumentError`);
* ``get_config()`` (JSON-able), ``from_config()``, ``__repr__``;
* the command-line flags of ``gradfit train`` and the table of ``docs/optimizers.md``
  (``gradfit.optimizers.table``), from the names, kinds and one-line docs.

``Declared`` knows nothing of updates, so a method with another update protocol (a
second-order method, say) declares its hyperparameters the same way by subclassing it.
Checks that involve two hyperparameters go in ``_validate(self)``.
"""
from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np

from ..checks import ArgumentError, check_choice, check_int, literal
from . import schedules


def _number(name, value, expected="a number") -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise ArgumentError(name, value, expected)   # a TypeError too
    return float(value)


class Number:
    """A finite real number in ``[low, high)`` (or ``(low, ...``, ``... high]``); None too
    where ``optional``."""

    def __init__(self, low=0.0, high=math.inf, low_open=False, high_open=True, optional=False):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.optional = optional

    def check(self, name, value):
        if value is None and self.optional:
            return None
        x = _number(name, value, self.expected())
        ok = math.isfinite(x) and (x > self.low if self.low_open else x >= self.low) and \
            (x < self.high if self.high_open else x <= self.high)
        if not ok:
            raise ArgumentError(name, value, self.expected())
        return x

    def expected(self) -> str:
        """What is allowed, in the words of `gradfit.checks`: ``a number in [0, 1)``."""
        if math.isfinite(self.high):
            text = (f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        else:
            text = f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        return f"None or {text}" if self.optional else text

    def describe(self, name) -> str:
        lo = "<" if self.low_open else "<="
        if math.isfinite(self.high):
            text = f"{self.low:g} {lo} {name} {'<' if self.high_open else '<='} {self.high:g}"
        else:
            text = f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        return f"None or {text}" if self.optional else text

    def to_config(self, value):
        return value


class Flag:
    """True or False."""

    def check(self, name, value):
        if not isinstance(value, (bool, np.bool_)):
            raise ArgumentError(name, value, self.expected())
        return bool(value)

    def expected(self) -> str:
        return "True or False"

    def describe(self, name) -> str:
        return "True or False"

    def to_config(self, value):
        return value


class Integer:
    """An integer >= ``low`` (a count: L-BFGS's history); None too where ``optional``.
    ``parse`` reads it from the command line."""

    def __init__(self, low=0, optional=False):
        self.low, self.optional = low, optional

    def check(self, name, value):
        if value is None and self.optional:
            return None
        try:
            return check_int(name, value, self.low)
        except ArgumentError:
            raise ArgumentError(name, value, self.expected()) from None

    def expected(self) -> str:
        return f"{'None or ' if self.optional else ''}an integer >= {self.low}"

    def describe(self, name) -> str:
        return self.expected()

    def to_config(self, value):
        return value

    parse = staticmethod(int)


class Choice:
    """One of a few words (LM's ``performance``: "mse" or "sse")."""

    def __init__(self, *values):
        self.values = values

    def check(self, name, value):
        return check_choice(name, value, self.values)

    def expected(self) -> str:
        return "one of " + literal(", ".join(map(repr, self.values)))

    def describe(self, name) -> str:
        return "one of " + ", ".join(map(repr, self.values))

    def to_config(self, value):
        return value

    parse = staticmethod(str)


class LearningRate(Number):
    """A finite number >= 0, or a schedule ``step -> lr`` (a serialized one is deserialized)."""

    def check(self, name, value):
        if isinstance(value, dict):
            value = schedules.deserialize(value)
        if callable(value):
            return value
        x = _number(name, value, self.expected())
        if not (math.isfinite(x) and x >= 0.0):
            raise ArgumentError(name, value, self.expected())
        return x

    def expected(self) -> str:
        return "a finite number >= 0 or a schedule of gradfit.optimizers.schedules"

    def describe(self, name) -> str:
        return "a finite number >= 0 (or a schedule from gradfit.optimizers.schedules)"

    def to_config(self, value):
        return schedules.serialize(value) if callable(value) else value


UNIT = Number(0.0, 1.0)                              # 0 <= x < 1: decay rates, momentum
POSITIVE = Number(low_open=True)                     # x > 0: epsilon
NONNEGATIVE = Number()                               # x >= 0
OPTIONAL_POSITIVE = Number(low_open=True, optional=True)
OPTIONAL_NONNEGATIVE = Number(optional=True)
FLAG = Flag()
LEARNING_RATE = LearningRate()


@dataclasses.dataclass(frozen=True)
class Hyper:
    """One hyperparameter: its name, default, allowed values (``kind``), a one-line doc, its
    name in Keras (True: the same; None: Keras has none) and in torch.optim (None: none), and
    whether it is keyword-only (gradfit's own options are).

    On a ``Declared`` class it is the class attribute of that name (``Adam.beta_1.default``);
    an instance holds the checked value.
    """

    name: str
    default: object
    kind: object
    doc: str
    keras: object = True
    torch: str | None = None
    keyword_only: bool = False

    @property
    def keras_name(self):
        return self.name if self.keras is True else self.keras

    def describe(self) -> str:
        return self.kind.describe(self.name)

    def replace(self, **changes) -> Hyper:
        return dataclasses.replace(self, **changes)


def moved(hyperparameters, name, after, **changes) -> tuple:
    """``hyperparameters`` with ``name`` moved right after ``after`` (and ``changes`` applied
    to it): how AdamW takes Adam's list with ``weight_decay`` second, as Keras orders it."""
    rest = [h for h in hyperparameters if h.name != name]
    (h,) = [h.replace(**changes) for h in hyperparameters if h.name == name]
    i = next(k for k, x in enumerate(rest) if x.name == after)
    return tuple(rest[:i + 1] + [h] + rest[i + 1:])


class Declared:
    """Base of classes configured by declared hyperparameters (see the module docstring)."""

    hyperparameters: tuple = ()
    _declared: dict = {}   # name -> Hyper, for the checks on assignment

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "hyperparameters" in cls.__dict__:
            cls._declared = {h.name: h for h in cls.hyperparameters}
            for h in cls.hyperparameters:
                setattr(cls, h.name, h)
            if "__init__" not in cls.__dict__:
                cls.__init__ = _derived_init(cls)

    def __setattr__(self, name, value):
        # a plain instance attribute, so that reading a hyperparameter costs nothing in update
        h = self._declared.get(name)
        object.__setattr__(self, name, value if h is None else h.kind.check(name, value))

    def _validate(self) -> None:
        """Checks across hyperparameters; raise ValueError naming the values and the fix."""

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able (a schedule as its serialized dict)."""
        return {h.name: h.kind.to_config(getattr(self, h.name)) for h in self.hyperparameters}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{h.name}={getattr(self, h.name)!r}" for h in self.hyperparameters)
        return f"{type(self).__name__}({args})"


def _derived_init(cls):
    kinds = inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(h.name, kinds[0] if h.keyword_only else kinds[1], default=h.default)
           for h in cls.hyperparameters])
    hypers = cls.hyperparameters

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for h in hypers:
            setattr(self, h.name, bound.arguments[h.name])
        self._validate()

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = f"Checks and stores the hyperparameters of {cls.__name__} (see the class)."
    return __init__
