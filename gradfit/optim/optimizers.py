"""Named optimizers (Keras class and argument names) over one flat parameter buffer.

Usage, the same for training, tests and toy problems::

    opt = Adam(learning_rate=1e-3)
    state = opt.init(params)                   # {"step": 0, "m": zeros, "v": zeros}
    params, state = opt.update(params, grads, state)

``update`` works **in place**: it writes ``params`` and the state arrays and returns them;
``grads`` is overwritten (clipping, weight decay, and the direction itself), so callers
must not use it after ``update``.  ``state["step"]`` is a Python int counting the updates
done; every other state value is an array of the params' shape and dtype.

Conventions shared by every optimizer (where the frameworks disagree):

* **Numerics follow the papers, which is what torch.optim implements**: epsilon outside the
  square root (Adagrad, RMSprop, Adam), inside both roots for Adadelta; Adam divides by
  ``1 - beta**t``.  ``epsilon_inside_sqrt=True`` gives the lecture's (and Keras's Adagrad and
  RMSprop) form ``g / sqrt(r + eps)``.
* **Momentum keeps the learning rate inside the velocity**, ``v <- mu v - lr d;
  theta <- theta + v`` (the lecture, Sutskever et al. 2013, Keras).  torch keeps it outside
  (``b <- mu b + d; theta <- theta - lr b``).  The two are the same trajectory while lr is
  constant (``v = -lr b``); they differ when lr changes: here a new lr acts on new gradients
  only, never rescaling the accumulated velocity, which is what a callback lowering lr
  expects, and the velocity is in parameter units.
* **weight_decay** is torch's coupled L2 (``g <- g + wd * theta``) in every optimizer but
  ``AdamW``, which decays decoupled (``theta <- theta (1 - lr wd)``, as torch and Keras).
  Keras applies decoupled decay in every optimizer: configure ``AdamW`` to match Keras there.
* **Clipping** is Keras's (``clipnorm`` per variable, ``global_clipnorm``, ``clipvalue``; at
  most one), applied to the raw gradient before weight decay.  Per-variable ``clipnorm``
  needs ``opt.init(params, segments=[(start, stop), ...])``; without segments the whole
  buffer is one variable.
* **Learning rate**: a float or a schedule (``schedules.py``); the lr of an update is
  ``current_learning_rate(state["step"])``, i.e. ``schedule(0)`` for the first update (Keras).

Fast path: when ``fused=True`` (default) and ``gradfit.optim.fused`` provides
``try_step(opt, params, grads, state, lr) -> bool``, it is called after clipping and weight
decay, with ``state["step"]`` still the count *before* this update (so ``t = step + 1``); it
updates ``params`` and the state arrays in place and returns True, or returns False to let
the numpy maths run.  ``update`` increments ``state["step"]`` either way.
"""
from __future__ import annotations

import math

from ..backend import xp
from . import schedules as _schedules
from . import transforms as T

try:  # written separately (numba kernels); the numpy maths below work without it
    from . import fused as _fused
except ImportError:  # pragma: no cover - depends on the checkout
    _fused = None


# ------------------------------------------------------------------ validation helpers
def _check(name, value, ok: bool, expected: str):
    if not ok:
        raise ValueError(f"Invalid {name} value: {value!r}; expected {expected}")


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np
            if isinstance(value, np.floating | np.integer):
                return float(value)
        except ImportError:  # pragma: no cover
            pass
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def _nonneg(name, value):
    value = _number(name, value)
    _check(name, value, value >= 0.0 and math.isfinite(value), "a finite number >= 0")
    return value


def _unit(name, value):
    value = _number(name, value)
    _check(name, value, 0.0 <= value < 1.0, f"0 <= {name} < 1")
    return value


def _positive(name, value):
    value = _number(name, value)
    _check(name, value, value > 0.0 and math.isfinite(value), "a finite number > 0")
    return value


def _optional_positive(name, value):
    return None if value is None else _positive(name, value)


class Optimizer:
    """Base: validation, clipping, weight decay, learning-rate lookup, then ``_step``.

    Subclasses define ``_slots(self)`` (names of the state arrays) and
    ``_step(params, d, state, lr, t)`` (the per-optimizer maths on the already clipped and
    decayed gradient ``d``, in place).
    """

    _decoupled_decay = False

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, fused=True):
        self.learning_rate = learning_rate
        self.weight_decay = None if weight_decay is None else _nonneg("weight_decay", weight_decay)
        self.clipnorm = _optional_positive("clipnorm", clipnorm)
        self.clipvalue = _optional_positive("clipvalue", clipvalue)
        self.global_clipnorm = _optional_positive("global_clipnorm", global_clipnorm)
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm can be set "
                             f"(as in Keras), got {', '.join(f'{k}={getattr(self, k)!r}' for k in given)}: keep one")
        self.fused = bool(fused)
        self.segments = None

    # -------------------------------------------------------------- learning rate
    @property
    def learning_rate(self):
        """A float, or a schedule ``step -> lr``; assign a float to change it (callbacks do)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, dict):
            value = _schedules.deserialize(value)
        if callable(value):
            self._learning_rate = value
            return
        value = _number("learning_rate", value)
        _check("learning_rate", value, value >= 0.0 and math.isfinite(value),
               "a finite number >= 0 (or a schedule from gradfit.optim.schedules)")
        self._learning_rate = value

    def current_learning_rate(self, step: int) -> float:
        """The learning rate used by the update that follows ``step`` updates."""
        lr = self._learning_rate
        return float(lr(step)) if callable(lr) else lr

    # -------------------------------------------------------------- init / update
    def _slots(self):
        return ()

    def init(self, params, segments=None):
        """State for ``params``: ``{"step": 0, name: zeros_like(params), ...}``.

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
        for name in self._slots():
            state[name] = self._initial(name, params)
        return state

    def _initial(self, name, params):
        return xp().zeros_like(params)

    def update(self, params, grads, state):
        """One update, in place on ``params`` and the state arrays; ``grads`` is consumed.

        Returns ``(params, state)``.
        """
        step = state["step"]
        lr = self.current_learning_rate(step)
        if self.clipvalue is not None:
            T.clip_by_value_(grads, self.clipvalue)
        elif self.clipnorm is not None:
            T.clip_by_norm_(grads, self.clipnorm, self.segments)
        elif self.global_clipnorm is not None:
            T.clip_by_global_norm_(grads, self.global_clipnorm)
        # The fused kernel applies weight decay inside its single pass (decay=True).
        if not (self.fused and _fused is not None
                and _fused.try_step(self, params, grads, state, lr, decay=True)):
            if self.weight_decay:
                if self._decoupled_decay:
                    T.decay_weights_(params, lr, self.weight_decay)
                else:
                    T.add_decayed_weights_(grads, params, self.weight_decay)
            self._step(params, grads, state, lr, step + 1)
        state["step"] = step + 1
        return params, state

    def _step(self, params, d, state, lr, t):  # pragma: no cover - abstract
        raise NotImplementedError

    # -------------------------------------------------------------- config
    def _own_config(self):
        return {}

    def get_config(self) -> dict:
        """JSON-able constructor arguments (a schedule is stored as its serialized dict)."""
        lr = self._learning_rate
        cfg = {"learning_rate": _schedules.serialize(lr) if callable(lr) else lr}
        cfg.update(self._own_config())
        cfg.update(weight_decay=self.weight_decay, clipnorm=self.clipnorm,
                   clipvalue=self.clipvalue, global_clipnorm=self.global_clipnorm, fused=self.fused)
        return cfg

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Update (``d`` = gradient after clipping and L2)::

        momentum == 0:  theta <- theta - lr d
        momentum  > 0:  v <- mu v - lr d;  theta <- theta + v                (velocity form)
        nesterov:       v <- mu v - lr d;  theta <- theta + mu v - lr d

    Defaults: ``learning_rate=0.01`` (Keras; torch has 1e-3), ``momentum=0``.  State
    ``"velocity"`` (when momentum > 0) is Keras's ``momentum`` variable; torch's buffer is
    ``b = -v / lr`` and torch's rule ``b <- mu b + d; theta <- theta - lr b`` gives the same
    trajectory for a constant lr (see the module docstring for why lr sits inside here).
    The nesterov form is the "reformulated" one at the stored parameters
    ``theta~ = theta + mu v``; ``forms.nesterov_lookahead`` is the lecture's form.
    ``weight_decay`` is torch's L2 (Keras decouples it).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, *, fused=True):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, fused)
        self.momentum = _unit("momentum", momentum)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("Invalid nesterov value: True with momentum=0.0; "
                             "expected momentum > 0 for Nesterov momentum")

    def _slots(self):
        return ("velocity",) if self.momentum > 0 else ()

    def _step(self, params, d, state, lr, t):
        if self.momentum > 0:
            T.apply_momentum_(params, d, lr, state["velocity"], self.momentum, self.nesterov)
        else:
            T.apply_step_(params, d, lr)

    def _own_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer 2011)::

        r <- r + d**2;  theta <- theta - lr d / (sqrt(r) + eps)

    Defaults are torch's: ``learning_rate=0.01, epsilon=1e-10, initial_accumulator_value=0``.
    ``epsilon_inside_sqrt=True`` gives the lecture's ``d / sqrt(r + eps)``, which is Keras's
    form (Keras defaults: lr 1e-3, eps 1e-7, initial_accumulator_value 0.1).  torch's
    ``lr_decay`` is ``schedules.InverseTimeDecay``.  State: ``"accumulator"``.
    """

    def __init__(self, learning_rate=0.01, initial_accumulator_value=0.0, epsilon=1e-10,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, *,
                 epsilon_inside_sqrt=False, fused=True):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, fused)
        self.initial_accumulator_value = _nonneg("initial_accumulator_value", initial_accumulator_value)
        self.epsilon = _positive("epsilon", epsilon)
        self.epsilon_inside_sqrt = bool(epsilon_inside_sqrt)

    def _slots(self):
        return ("accumulator",)

    def _initial(self, name, params):
        return xp().full_like(params, self.initial_accumulator_value)

    def _step(self, params, d, state, lr, t):
        T.scale_by_rss_(d, state["accumulator"], self.epsilon, self.epsilon_inside_sqrt)
        T.apply_step_(params, d, lr)

    def _own_config(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon, "epsilon_inside_sqrt": self.epsilon_inside_sqrt}


class RMSprop(Optimizer):
    """RMSprop (Hinton, lecture 6e, 2012), optionally centered (Graves 2013) and with momentum::

        v <- rho v + (1-rho) d**2
        centered: mg <- rho mg + (1-rho) d;  s = max(v - mg**2, 0)   else s = v
        step = d / (sqrt(s) + eps)
        momentum == 0: theta <- theta - lr step
        momentum  > 0: u <- mu u - lr step;  theta <- theta + u

    Defaults: ``learning_rate=1e-3, rho=0.9`` (Hinton, Keras), ``epsilon=1e-7`` (Keras).
    torch's defaults are lr 1e-2, alpha 0.99, eps 1e-8, with eps outside the root, as here;
    Keras puts eps inside: ``epsilon_inside_sqrt=True`` matches Keras exactly.  The momentum
    buffer holds lr (Keras; torch keeps lr outside; equal for constant lr).  State: ``"rms"``,
    ``"momentum"`` (momentum > 0; Keras's buffer with the opposite sign), ``"mean_grad"``.
    """

    def __init__(self, learning_rate=1e-3, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, *,
                 epsilon_inside_sqrt=False, fused=True):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, fused)
        self.rho = _unit("rho", rho)
        self.momentum = _unit("momentum", momentum)
        self.epsilon = _positive("epsilon", epsilon)
        self.centered = bool(centered)
        self.epsilon_inside_sqrt = bool(epsilon_inside_sqrt)

    def _slots(self):
        return ("rms",) + (("momentum",) if self.momentum > 0 else ()) + \
            (("mean_grad",) if self.centered else ())

    def _step(self, params, d, state, lr, t):
        T.scale_by_rms_(d, state["rms"], self.epsilon, self.rho, state.get("mean_grad"),
                        self.epsilon_inside_sqrt)
        if self.momentum > 0:
            T.apply_momentum_(params, d, lr, state["momentum"], self.momentum)
        else:
            T.apply_step_(params, d, lr)

    def _own_config(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered, "epsilon_inside_sqrt": self.epsilon_inside_sqrt}


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012, Algorithm 1), epsilon inside both roots::

        E[g2]  <- rho E[g2] + (1-rho) d**2
        dx      = sqrt(E[dx2] + eps) / sqrt(E[g2] + eps) * d
        E[dx2] <- rho E[dx2] + (1-rho) dx**2
        theta  <- theta - lr dx

    Defaults are Zeiler's: ``learning_rate=1.0, rho=0.95, epsilon=1e-6``.  Same rule as
    torch (whose default rho is 0.9) and Keras (whose default lr is 1e-3, which barely
    moves: Adadelta's step already has the units of theta).  State: ``"accum_grad"``,
    ``"accum_update"``.
    """

    def __init__(self, learning_rate=1.0, rho=0.95, epsilon=1e-6, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, *, fused=True):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, fused)
        self.rho = _unit("rho", rho)
        self.epsilon = _positive("epsilon", epsilon)

    def _slots(self):
        return ("accum_grad", "accum_update")

    def _step(self, params, d, state, lr, t):
        T.scale_by_adadelta_(d, state["accum_grad"], state["accum_update"], self.epsilon, self.rho)
        T.apply_step_(params, d, lr)

    def _own_config(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1), optionally AMSGrad (Reddi et al. 2018)::

        m <- b1 m + (1-b1) d;   v <- b2 v + (1-b2) d**2;   (amsgrad: vmax <- max(vmax, v))
        theta <- theta - lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)

    with ``t`` the 1-based step.  The lecture's slide writes the bias correction as
    ``1 - beta`` without ``**t``: a typo.  Defaults are the paper's: ``1e-3, 0.9, 0.999,
    1e-8``.  This is torch's rule.  Keras uses the paper's "epsilon-hat" variant
    ``lr sqrt(1-b2**t)/(1-b1**t) * m / (sqrt(v) + eps)``, which equals this rule with
    ``eps / sqrt(1 - b2**t)`` in place of ``eps`` (tested), so no constant eps makes the two
    agree exactly (and Keras's default eps is 1e-7).  ``epsilon_inside_sqrt=True`` gives the
    lecture's ``m_hat / sqrt(v_hat + eps)``.  State: ``"m"``, ``"v"``, ``"vmax"`` (amsgrad).
    ``weight_decay`` is torch's coupled L2; use ``AdamW`` for decoupled decay.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, *,
                 epsilon_inside_sqrt=False, fused=True):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, fused)
        self.beta_1 = _unit("beta_1", beta_1)
        self.beta_2 = _unit("beta_2", beta_2)
        self.epsilon = _positive("epsilon", epsilon)
        self.amsgrad = bool(amsgrad)
        self.epsilon_inside_sqrt = bool(epsilon_inside_sqrt)

    def _slots(self):
        return ("m", "v") + (("vmax",) if self.amsgrad else ())

    def _step(self, params, d, state, lr, t):
        T.scale_by_adam_(d, state["m"], state["v"], t, self.beta_1, self.beta_2, self.epsilon,
                         state.get("vmax"), self.epsilon_inside_sqrt)
        T.apply_step_(params, d, lr)

    def _own_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad, "epsilon_inside_sqrt": self.epsilon_inside_sqrt}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019)::

        theta <- theta * (1 - lr wd);  then the Adam step (on the undecayed gradient)

    Same rule as ``torch.optim.AdamW`` and Keras ``AdamW`` (which adds Keras's epsilon-hat,
    see ``Adam``).  Default ``weight_decay=0.01`` is torch's (Keras: 0.004).
    """

    _decoupled_decay = True

    def __init__(self, learning_rate=1e-3, weight_decay=0.01, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 *, epsilon_inside_sqrt=False, fused=True):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clipnorm,
                         clipvalue, global_clipnorm, epsilon_inside_sqrt=epsilon_inside_sqrt,
                         fused=fused)
