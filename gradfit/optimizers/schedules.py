"""Learning-rate schedules: small callables ``schedule(step) -> float``.

``step`` is the number of updates done before the one being taken (0 for the first), as in
Keras; pass the epoch instead to schedule per epoch (``LearningRateScheduler`` does).
Each schedule has ``get_config()`` and round-trips through ``serialize`` / ``deserialize``
(also reachable as ``gradfit.optimizers.serialize``).  Names and arguments follow
``keras.optimizers.schedules`` where Keras has the schedule.
"""
from __future__ import annotations

import math


def _num(name, value, low=0.0, strict=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > low if strict else value >= low)
    if not ok:
        rel = ">" if strict else ">="
        raise ValueError(f"Invalid {name} value: {value!r}; expected a finite number {rel} {low}")
    return value


class Schedule:
    """Base: ``__call__(step) -> float``, ``get_config``, ``from_config``."""

    def __call__(self, step) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._config.items())})"

    def __eq__(self, other):
        return type(self) is type(other) and self._config == other._config


LearningRateSchedule = Schedule  # Keras's name for the base class (keras.optimizers.schedules)


class Constant(Schedule):
    """``lr_i = lr_0``."""

    def __init__(self, learning_rate):
        self.learning_rate = _num("learning_rate", learning_rate)
        self._config = {"learning_rate": learning_rate}

    def __call__(self, step):
        return float(self.learning_rate)


class _KerasDecay(Schedule):
    """Keras's ``(initial_learning_rate, decay_steps, decay_rate, staircase=False)`` family:
    the decay runs on ``p = step / decay_steps``, or ``floor`` of it with ``staircase``."""

    _rate_must_be_positive = False

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = _num("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _num("decay_steps", decay_steps, strict=True)
        self.decay_rate = _num("decay_rate", decay_rate, strict=self._rate_must_be_positive)
        self.staircase = bool(staircase)
        self._config = {"initial_learning_rate": initial_learning_rate, "decay_steps": decay_steps,
                        "decay_rate": decay_rate, "staircase": self.staircase}

    def _progress(self, step):
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p


class InverseTimeDecay(_KerasDecay):
    """``lr_i = lr_0 / (1 + k i)`` with ``k = decay_rate / decay_steps``.

    Satisfies the Robbins-Monro conditions (Robbins & Monro 1951): ``sum lr_i = inf`` and
    ``sum lr_i**2 < inf``, which the stochastic-approximation convergence proofs need.
    ``staircase=True`` uses ``floor(i / decay_steps)`` (Keras).  torch's Adagrad ``lr_decay``
    is this schedule with ``decay_steps = 1, decay_rate = lr_decay``.  Arguments in Keras's
    order: ``InverseTimeDecay(0.1, 1000, 0.5)`` decays by half every 1000 steps' worth.
    """

    def __call__(self, step):
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class ExponentialDecay(_KerasDecay):
    """``lr_i = lr_0 * decay_rate ** (i / decay_steps)`` (``floor`` of it with ``staircase``)."""

    _rate_must_be_positive = True

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate**self._progress(step)


class StepDecay(Schedule):
    """``lr_i = lr_0 * gamma ** floor(i / step_size)`` (torch ``StepLR``)."""

    def __init__(self, initial_learning_rate, step_size, gamma=0.1):
        self.initial_learning_rate = _num("initial_learning_rate", initial_learning_rate)
        if not isinstance(step_size, int) or isinstance(step_size, bool) or step_size < 1:
            raise ValueError(f"Invalid step_size value: {step_size!r}; expected an integer >= 1")
        self.step_size = step_size
        self.gamma = _num("gamma", gamma)
        self._config = {"initial_learning_rate": initial_learning_rate, "step_size": step_size,
                        "gamma": gamma}

    def __call__(self, step):
        return self.initial_learning_rate * self.gamma ** (int(step) // self.step_size)


class CosineDecay(Schedule):
    """Cosine decay with optional linear warmup (Loshchilov & Hutter 2017; Keras 3 semantics).

    With ``warmup_target`` set, the lr rises linearly from ``initial_learning_rate`` to
    ``warmup_target`` over ``warmup_steps``; then, with ``peak`` the lr reached
    (``warmup_target`` or ``initial_learning_rate``) and ``s = min(i - warmup_steps,
    decay_steps) / decay_steps``::

        lr_i = peak * ((1 - alpha) * 0.5 * (1 + cos(pi * s)) + alpha)
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = _num("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _num("decay_steps", decay_steps, strict=True)
        self.alpha = _num("alpha", alpha)
        self.warmup_target = None if warmup_target is None else _num("warmup_target", warmup_target)
        self.warmup_steps = _num("warmup_steps", warmup_steps)
        self._config = {"initial_learning_rate": initial_learning_rate, "decay_steps": decay_steps,
                        "alpha": alpha, "warmup_target": warmup_target, "warmup_steps": warmup_steps}

    def __call__(self, step):
        if self.warmup_target is None:
            peak = self.initial_learning_rate
        else:
            peak = self.warmup_target
            if step < self.warmup_steps:
                frac = step / self.warmup_steps
                return self.initial_learning_rate + frac * (self.warmup_target - self.initial_learning_rate)
        s = min(step - self.warmup_steps, self.decay_steps) / self.decay_steps
        return peak * ((1.0 - self.alpha) * 0.5 * (1.0 + math.cos(math.pi * s)) + self.alpha)


class PolynomialDecay(Schedule):
    """Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate`` (Keras 3 semantics).

    With ``p = min(i, decay_steps) / decay_steps``::

        lr_i = (initial_learning_rate - end_learning_rate) * (1 - p) ** power + end_learning_rate

    ``power=1`` (the default) is a linear decay, reached at ``decay_steps`` and held after it.
    ``cycle=True`` restarts instead of holding: ``decay_steps`` is replaced by the first
    multiple of it that is ``>= i`` (``decay_steps`` itself at ``i = 0``), so each cycle
    decays from a point on the same polynomial, as Keras does.
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False):
        self.initial_learning_rate = _num("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _num("decay_steps", decay_steps, strict=True)
        self.end_learning_rate = _num("end_learning_rate", end_learning_rate)
        self.power = _num("power", power)
        self.cycle = bool(cycle)
        self._config = {"initial_learning_rate": initial_learning_rate, "decay_steps": decay_steps,
                        "end_learning_rate": end_learning_rate, "power": power, "cycle": self.cycle}

    def __call__(self, step):
        steps = self.decay_steps
        if self.cycle:
            steps = steps * (1 if step == 0 else math.ceil(step / steps))
        else:
            step = min(step, steps)
        p = step / steps
        return ((self.initial_learning_rate - self.end_learning_rate) * (1.0 - p) ** self.power
                + self.end_learning_rate)


SCHEDULES = {c.__name__: c for c in (Constant, InverseTimeDecay, ExponentialDecay, StepDecay,
                                     CosineDecay, PolynomialDecay)}


def serialize(schedule) -> dict:
    """``{"class_name": ..., "config": ...}`` of a schedule."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"cannot serialize {schedule!r}: only gradfit.optimizers.schedules classes "
                        f"({', '.join(SCHEDULES)}) are serializable")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict):
    """The schedule described by ``serialize``'s dict."""
    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}: expected one of {', '.join(SCHEDULES)}")
    return SCHEDULES[name].from_config(config.get("config", {}))
