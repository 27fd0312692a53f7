"""The optimizer base: learning rate, clipping, weight decay, state, and the rule's hand-off.

Usage, the same for training, tests and toy problems::

    opt = Adam(learning_rate=1e-3)
    state = opt.init(params)                   # {"step": 0, "m": zeros, "v": zeros}
    params, state = opt.update(params, grads, state)

An optimizer is one file (``adam.py`` ...) holding its docstring (the rule in maths, the
defaults, the paper, where frameworks differ), its declared hyperparameters (``hyper.py``),
its elementwise ``rule``, the per-step scalars the rule takes (``coefficients``) and its
flags (``flags``: the options that choose a branch of the rule).  This
base does the rest, the same for all: ``update`` takes the learning rate of this step, clips
the gradient, works out the weight decay, and hands the rule, the state arrays and the
scalars to a backend (``drivers.py``: numba, numpy or CuPy, each running the same rule).

``update`` works **in place**: it writes ``params`` and the state arrays and returns them;
``grads`` may be overwritten (clipping and the numpy backend do), so callers must not use it
after ``update``.  ``state["step"]`` is a Python int counting the updates done; every other
state value is an array of the params' shape and dtype (checkpoints, MPI broadcast and GPU
transfer are one operation each).

Conventions shared by every optimizer (where the frameworks disagree):

* **Numerics follow the papers, which is what torch.optim implements**: epsilon outside the
  square root (Adagrad, RMSprop, Adam, Nadam), inside both roots for Adadelta; Adam divides
  by ``1 - beta**t``.  Keras's forms are options, each tested against Keras:
  ``epsilon_inside_sqrt=True`` (Adagrad, RMSprop; also the lecture's Adam form),
  ``epsilon_hat=True`` (Adam, AdamW), ``momentum_decay=1`` (Nadam).
* **Momentum keeps the learning rate inside the velocity**, ``v <- mu v - lr d;
  theta <- theta + v`` (the lecture, Sutskever et al. 2013, Keras).  torch keeps it outside
  (``b <- mu b + d; theta <- theta - lr b``): the same trajectory while lr is constant
  (``v = -lr b``); here a new lr acts on new gradients only and never rescales the
  accumulated velocity, which is what a callback lowering lr expects.
* **weight_decay** is torch's coupled L2 (``g <- g + wd * theta``) except where a class sets
  ``decoupled_weight_decay`` (AdamW, Lion: ``theta <- theta (1 - lr wd)``, as torch, Keras
  and the Lion paper).  Keras decouples it in every optimizer: use AdamW to match Keras.
* **Clipping** is Keras's (``clipnorm`` per variable, ``global_clipnorm``, ``clipvalue``; at
  most one), applied to the raw gradient before weight decay.  Per-variable ``clipnorm``
  needs ``opt.init(params, segments=[(start, stop), ...])``; without segments the whole
  buffer is one variable.
* **Learning rate**: a float or a schedule (``schedules.py``); the lr of an update is
  ``current_learning_rate(state["step"])``, i.e. ``schedule(0)`` for the first update (Keras).
"""
from __future__ import annotations

from ..backend import xp
from . import clipping, drivers
from .hyper import (FLAG, LEARNING_RATE, OPTIONAL_NONNEGATIVE, OPTIONAL_POSITIVE, Declared,
                    Hyper)

#: every registered optimizer class by class name, in registration (import) order
CLASSES: dict = {}
#: the lower-case names ``get`` accepts: name -> (class, constructor arguments)
NAMES: dict = {}


def learning_rate(default) -> Hyper:
    """The ``learning_rate`` hyperparameter with this optimizer's default."""
    return Hyper("learning_rate", default, LEARNING_RATE,
                 "step size: a float, or a schedule step -> lr", torch="lr")


WEIGHT_DECAY = Hyper("weight_decay", None, OPTIONAL_NONNEGATIVE,
                     "weight decay rate: coupled L2 g + wd theta, or decoupled theta (1 - lr wd) "
                     "where the optimizer decouples it", torch="weight_decay")
CLIPPING = (
    Hyper("clipnorm", None, OPTIONAL_POSITIVE, "clip each variable's gradient to this L2 norm"),
    Hyper("clipvalue", None, OPTIONAL_POSITIVE, "clip each gradient element to [-c, c]"),
    Hyper("global_clipnorm", None, OPTIONAL_POSITIVE, "clip the whole gradient to this L2 norm"),
)
FUSED = Hyper("fused", True, FLAG, "run buffers of >= 131,072 parameters through the "
              "multi-threaded numba loop (same results as the numpy path)", keras=None,
              keyword_only=True)


def declare(lr: Hyper, *own: Hyper, options=()) -> tuple:
    """An optimizer's hyperparameters in Keras's order: the learning rate, the optimizer's
    own, weight decay and clipping; then gradfit's own ``options`` and ``fused``, keyword-only."""
    return (lr, *own, WEIGHT_DECAY, *CLIPPING,
            *(h.replace(keyword_only=True) for h in options), FUSED)


class Optimizer(Declared):
    """Base of the first-order optimizers (see the module docstring).

    A subclass declares ``hyperparameters`` (``declare(...)``), ``rule`` (a staticmethod:
    ``rule(p, g, *slots, *coefficients, *flags) -> (p, *slots)``, see ``elementwise.py``),
    ``slots`` (the rule's state slots in order), ``coefficients(lr, t)`` (the rule's numbers
    at the 1-based step ``t``, in order) and ``flags()`` (its bools, in order, fixed for a
    configuration), and may override ``kept_slots`` (the slots this configuration keeps),
    ``initial_value`` and ``_validate``.  ``names`` (``{"adam": {}, "amsgrad": {"amsgrad": True}}``) registers
    the class with ``gradfit.optimizers.get``: defining the class is its registration.
    """

    rule = None
    slots: tuple = ()
    decoupled_weight_decay = False
    torch_class: str | None = None   # the torch.optim class of the same rule, if any
    segments = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "names" in cls.__dict__:
            taken = [n for n in cls.names if n in NAMES]
            if taken or cls.__name__ in CLASSES:
                raise ValueError(f"{cls.__name__}: names {taken or [cls.__name__]} are taken")
            CLASSES[cls.__name__] = cls
            NAMES.update({name: (cls, dict(preset)) for name, preset in cls.names.items()})

    def _validate(self):
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm can be set "
                             f"(as in Keras), got {', '.join(f'{k}={getattr(self, k)!r}' for k in given)}: keep one")

    # -------------------------------------------------------------- what a subclass declares
    def kept_slots(self) -> tuple:
        """The state slots this configuration keeps (all of ``slots`` unless overridden)."""
        return self.slots

    def initial_value(self, slot: str) -> float:
        return 0.0

    def coefficients(self, lr: float, t: int) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def flags(self) -> tuple:
        return ()

    # -------------------------------------------------------------- learning rate
    def current_learning_rate(self, step: int) -> float:
        """The learning rate used by the update that follows ``step`` updates."""
        lr = self.learning_rate
        return float(lr(step)) if callable(lr) else lr

    # -------------------------------------------------------------- init / update
    def init(self, params, segments=None):
        """State for ``params``: ``{"step": 0, slot: array like params, ...}``.

        ``segments``: ``(start, stop)`` of each variable in the flat buffer, used only by
        per-variable ``clipnorm``.
        """
        if getattr(params, "ndim", None) != 1:
            raise ValueError(f"params must be a flat 1-D array, got shape {getattr(params, 'shape', None)}")
        if segments is not None:
            segments = [(int(a), int(b)) for a, b in segments]
            for a, b in segments:
                if not 0 <= a <= b <= params.shape[0]:
                    raise ValueError(f"segment {(a, b)} is outside the buffer of size {params.shape[0]}")
        self.segments = segments
        state = {"step": 0}
        for name in self.kept_slots():
            value = self.initial_value(name)
            state[name] = xp().full_like(params, value) if value else xp().zeros_like(params)
        return state

    def update(self, params, grads, state, lr_scale=1.0):
        """One update, in place on ``params`` and the state arrays; ``grads`` is consumed.

        ``lr_scale`` multiplies the learning rate of this update only (the adaptive batch size's
        factor, `gradfit.callbacks.AdaptiveBatchSize`): ``learning_rate`` itself, which callbacks
        read and set, stays the base rate. Returns ``(params, state)``.
        """
        step = state["step"]
        lr = self.current_learning_rate(step)
        if lr_scale != 1.0:
            lr = lr_scale * lr
        if self.clipvalue is not None:
            clipping.clip_by_value_(grads, self.clipvalue)
        elif self.clipnorm is not None:
            clipping.clip_by_norm_(grads, self.clipnorm, self.segments)
        elif self.global_clipnorm is not None:
            clipping.clip_by_global_norm_(grads, self.global_clipnorm)
        keep, wd = 1.0, 0.0
        if self.weight_decay:
            if self.decoupled_weight_decay:
                keep = 1.0 - lr * self.weight_decay
            else:
                wd = self.weight_decay
        drivers.apply(self.rule, self.slots, params, grads, self._state_arrays(state), keep, wd,
                      self.coefficients(lr, step + 1), self.flags(), self.fused)
        state["step"] = step + 1
        return params, state

    def _state_arrays(self, state) -> list:
        """The state arrays in the rule's slot order, None for a slot not kept."""
        kept = self.kept_slots()
        try:
            return [state[name] if name in kept else None for name in self.slots]
        except KeyError:
            raise KeyError(f"{type(self).__name__} state holds {sorted(k for k in state if k != 'step')}, "
                           f"this configuration needs {list(kept)}: make the state with "
                           "opt.init(params) after changing the optimizer's settings") from None
