"""The next global batch size from the gradient noise scale, and the learning rate to go with it.

Pure logic, no training: a stream of B_noise estimates (``NoiseScaleEstimator.b_simple``, or the
``GradientNoiseScale`` callback's ``b_simple``) goes in, the batch size for the next steps and a
learning-rate factor come out.  ``fit(batch_size="auto")``'s ``AdaptiveBatchSize`` callback
calls ``update`` and ``lr_factor`` after every new estimate; this module knows nothing of it.

The model (McCandlish, Kaplan, Amodei et al. 2018, "An Empirical Model of Large-Batch Training",
arXiv:1812.06162, Section 2): with B_noise the noise scale, training to a given loss at batch B
takes

    S(B) = S_min (1 + B_noise / B)  steps   and   E(B) = E_min (1 + B / B_noise)  examples.

Cost of a batch size.  By default the product of both in their natural units,

    cost(B) = (S / S_min) (E / E_min) = (1 + B_noise / B) (1 + B / B_noise),

which is smallest at B = B_noise (there S = 2 S_min and E = 2 E_min: the paper's critical batch,
the knee between wasting steps and wasting examples).  Given a measured step time t(B)
(``step_time``), the cost is the wall time per unit of progress instead,

    cost(B) = (1 + B_noise / B) t(B),

the inverse of Pollux's goodput, throughput x statistical efficiency (Qiao et al. 2021, OSDI).

The choice.  The allowed sizes are ``ranks * 2**k`` (``rounding="pow2"``: every rank's slice a
power of two) or every multiple of ``ranks`` (``"multiple"``), between ``min_batch_size`` and
the smaller of ``max_batch_size`` and the memory cap ``max_fit``.  The batch changes only when
the best allowed size is cheaper than the current one by at least ``threshold`` (default 5%):
adaptdl switched its batch at every restart and epoch and oscillated, and settled on "only if
the predicted speedup improves by 5% or more" (petuum/adaptdl issue #27).  By default the batch
never shrinks (``shrink=False``): B_noise grows as the loss falls (McCandlish et al., Section 3),
and Smith et al. 2017 ("Don't Decay the Learning Rate, Increase the Batch Size") only grow it,
so a dip of the estimate is noise, not a reason to undo a growth.  ``max_factor`` caps one change.

Learning rate (``lr_rule``), relative to ``base_lr`` tuned at ``base_batch_size`` (default: the
first batch size):

* ``"sgd"``: McCandlish et al. Section 2.2, eps_opt(B) = eps_max / (1 + B_noise / B), hence

      factor = (1 + B_noise / B_base) / (1 + B_noise / B):

  linear scaling B / B_base while B << B_noise (Goyal et al. 2017), flat once B >> B_noise.
* ``"adam"``: the square root of the SGD factor,

      factor = sqrt((1 + B_noise / B_base) / (1 + B_noise / B)),

  which is Malladi et al.'s square-root scaling rule for adaptive methods (2022, "On the SDEs
  and Scaling Rules for Adaptive Gradient Algorithms", NeurIPS) in the noise-dominated regime
  B << B_noise, where their SDE analysis holds, and saturates like McCandlish's for B >> B_noise
  (Adam normalizes the update, so the update's size stops depending on B once the gradient
  noise is small).  Why this one: Li et al. 2024 ("Surge Phenomenon in Optimal Learning Rate
  and Batch Size Scaling", NeurIPS) find Adam's optimal rate rises up to B = B_noise and FALLS
  beyond it; this controller never targets a batch far above B_noise (the cost above has its
  minimum at B_noise), and in the region it uses, B <= ~B_noise, the two rules agree in shape.
  Malladi's rule also rescales the betas and eps; only the rate is changed here.
* ``"none"``: factor 1.

``B_noise`` here is whatever estimate is passed in; gradfit measures B_simple = tr(Sigma)/|G|^2,
which the paper uses in place of B_noise = tr(H Sigma)/(G^T H G) (they agree when the Hessian is
a multiple of the identity; the paper finds them within a small factor in practice).
"""
from __future__ import annotations

import math
from numbers import Integral, Real

ROUNDINGS = ("pow2", "multiple")
LR_RULES = ("sgd", "adam", "none")


def _int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_auto_batch_options(*, min_batch_size, max_batch_size, ranks=1, max_fit=None,
                             rounding="pow2", steps_per_epoch=None, n_examples=None) -> tuple:
    """Validate the options of ``batch_size="auto"`` before any training; return the allowed sizes.

    Raises ValueError with the values received and the fix for: a fixed ``steps_per_epoch``
    (it assumes one batch size), ``min_batch_size > max_batch_size``, a bound that does not
    divide by the ``ranks``, a memory cap ``max_fit`` below the minimum, a minimum above the
    training set, or a range that holds no allowed size.  Returns the allowed global batch
    sizes, ascending (see the module docstring).
    """
    if steps_per_epoch is not None:
        raise ValueError(
            f"batch_size='auto' changes the batch size while training, so a fixed "
            f"steps_per_epoch={steps_per_epoch!r} (which assumes one batch size) cannot hold; omit "
            "steps_per_epoch (an epoch is one pass over the data), or give a fixed batch_size")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    ranks = _int("ranks", ranks)
    lo = _int("min_batch_size", min_batch_size)
    hi = _int("max_batch_size", max_batch_size)
    if lo > hi:
        raise ValueError(f"min_batch_size={lo} is larger than max_batch_size={hi}; "
                         "swap them or widen the range")
    for name, v in (("min_batch_size", lo), ("max_batch_size", hi)):
        if v % ranks:
            down, up = v - v % ranks, v - v % ranks + ranks
            raise ValueError(
                f"{name}={v} does not divide by the {ranks} ranks (each rank takes an equal slice "
                f"of every global batch); use a multiple of {ranks}, e.g. {down or up} or {up}")
    cap = hi
    if max_fit is not None:
        max_fit = _int("max_fit", max_fit)
        if max_fit < lo:
            raise ValueError(f"the memory cap max_fit={max_fit} is below min_batch_size={lo}: no "
                             "allowed batch fits in memory; lower min_batch_size or free memory")
        cap = min(cap, max_fit)
    if n_examples is not None:
        n_examples = _int("n_examples", n_examples)
        if lo > n_examples:
            raise ValueError(f"min_batch_size={lo} is larger than the {n_examples} training "
                             f"examples; use min_batch_size <= {n_examples}")
        cap = min(cap, n_examples)
    sizes = allowed_sizes(lo, cap, ranks, rounding)
    if not sizes:
        raise ValueError(
            f"no allowed batch size between min_batch_size={lo} and {cap} with rounding="
            f"{rounding!r} and {ranks} ranks (pow2 sizes are {ranks} x a power of two); widen the "
            "range or use rounding='multiple'")
    return sizes


def allowed_sizes(lo: int, hi: int, ranks: int = 1, rounding: str = "pow2") -> tuple:
    """The global batch sizes in [lo, hi]: ``ranks * 2**k`` ("pow2") or multiples of ranks."""
    if rounding == "multiple":
        return tuple(range(-(-lo // ranks) * ranks, hi + 1, ranks))
    sizes, b = [], ranks
    while b <= hi:
        if b >= lo:
            sizes.append(b)
        b *= 2
    return tuple(sizes)


def check_b_noise(b_noise) -> float:
    """``b_noise`` as a positive finite float; a clear ValueError otherwise."""
    if isinstance(b_noise, bool) or not isinstance(b_noise, Real):
        raise TypeError(f"the noise scale estimate must be a number, got {b_noise!r}")
    v = float(b_noise)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(
            f"the noise scale estimate B_noise={b_noise!r} is not a positive finite number: the "
            "gradient norms were not finite (the run diverged: lower the learning rate) or the "
            "estimator was fed a bad value; pass None while the estimate is not available yet")
    return v


class BatchSizeController:
    """The global batch size and learning-rate factor from a stream of B_noise estimates.

    Args:
        min_batch_size, max_batch_size: the range of global batch sizes; training starts at the
            smallest allowed size >= min_batch_size.
        ranks: data-parallel ranks; every allowed size divides by it.
        max_fit: the largest global batch that fits in memory (None: no cap).
        rounding: "pow2" (ranks x 2**k) or "multiple" (any multiple of ranks).
        threshold: the relative cost saving a change must bring (default 0.05, adaptdl#27).
        shrink: allow the batch to decrease (default False).
        max_factor: the largest ratio of one change, e.g. 2.0 (default None: no limit).
        lr_rule: "adam" (default), "sgd" or "none" (module docstring).
        base_batch_size: the batch the base learning rate was tuned at (default: the start).
        step_time: optional callable ``B -> seconds per step``; the cost becomes wall time.
        steps_per_epoch, n_examples: checked by `check_auto_batch_options`.

    Example (scripted estimates, as in the tests)::

        ctl = BatchSizeController(32, 1024)
        for b_noise in [None, 40.0, 90.0, 300.0]:
            batch = ctl.update(b_noise)               # 32, 32, 64, 256
            lr = base_lr * ctl.lr_factor()
    """

    def __init__(self, min_batch_size=32, max_batch_size=4096, *, ranks=1, max_fit=None,
                 rounding="pow2", threshold=0.05, shrink=False, max_factor=None, lr_rule="adam",
                 base_batch_size=None, step_time=None, steps_per_epoch=None, n_examples=None):
        self.sizes = check_auto_batch_options(
            min_batch_size=min_batch_size, max_batch_size=max_batch_size, ranks=ranks,
            max_fit=max_fit, rounding=rounding, steps_per_epoch=steps_per_epoch,
            n_examples=n_examples)
        if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0 <= threshold < 1:
            raise ValueError(f"threshold must be a number in [0, 1), got {threshold!r}; 0.05 "
                             "(change only for a 5% saving) is the default")
        if max_factor is not None and (isinstance(max_factor, bool) or not isinstance(
                max_factor, Real) or not max_factor > 1):
            raise ValueError(f"max_factor must be a number > 1 or None, got {max_factor!r}")
        if lr_rule not in LR_RULES:
            raise ValueError(f"lr_rule must be one of {LR_RULES}, got {lr_rule!r}")
        if step_time is not None and not callable(step_time):
            raise TypeError(f"step_time must be a callable B -> seconds, got {step_time!r}")
        self.threshold = float(threshold)
        self.shrink = bool(shrink)
        self.max_factor = None if max_factor is None else float(max_factor)
        self.lr_rule = lr_rule
        self.step_time = step_time
        self.base_batch_size = (self.sizes[0] if base_batch_size is None
                                else _int("base_batch_size", base_batch_size))
        self.reset()

    def reset(self) -> None:
        """Back to the smallest allowed size, no estimate seen."""
        self.batch_size = self.sizes[0]
        self.b_noise = None          # the last estimate that was available
        self.history = {"update": [], "b_noise": [], "batch_size": [], "lr_factor": []}

    # -- the model ------------------------------------------------------------------------
    def cost(self, batch: int, b_noise: float) -> float:
        """The cost of training at ``batch`` under ``b_noise`` (module docstring)."""
        b_noise = check_b_noise(b_noise)
        steps = 1.0 + b_noise / batch
        if self.step_time is not None:
            return steps * float(self.step_time(batch))
        return steps * (1.0 + batch / b_noise)

    def best(self, b_noise: float) -> int:
        """The allowed size of least cost (ties: the smaller), ignoring hysteresis."""
        return min(self.sizes, key=lambda b: (self.cost(b, b_noise), b))

    # -- the decision ---------------------------------------------------------------------
    def update(self, b_noise) -> int:
        """Fold in one estimate (None while the estimator warms up); return the batch to use.

        The batch moves to the best allowed size only if that saves at least ``threshold`` of
        the current cost, never down unless ``shrink``, and by at most ``max_factor``.
        """
        if b_noise is not None:
            self.b_noise = check_b_noise(b_noise)
            self.batch_size = self._decide(self.b_noise)
        h = self.history
        h["update"].append(len(h["update"]))
        h["b_noise"].append(self.b_noise)
        h["batch_size"].append(self.batch_size)
        h["lr_factor"].append(self.lr_factor())
        return self.batch_size

    def _decide(self, b_noise: float) -> int:
        now = self.batch_size
        target = self.best(b_noise)
        if target < now and not self.shrink:
            return now
        if self.max_factor is not None:
            lo, hi = now / self.max_factor, now * self.max_factor
            within = [b for b in self.sizes if lo <= b <= hi]
            target = min(within, key=lambda b: (self.cost(b, b_noise), b))
            if target < now and not self.shrink:
                return now
        if self.cost(target, b_noise) <= (1.0 - self.threshold) * self.cost(now, b_noise):
            return target
        return now

    def lr_factor(self, batch=None, b_noise=None) -> float:
        """The learning-rate multiplier at ``batch`` (default: the current one) relative to
        ``base_batch_size``, under ``b_noise`` (default: the last estimate; 1.0 before any)."""
        batch = self.batch_size if batch is None else batch
        b_noise = self.b_noise if b_noise is None else check_b_noise(b_noise)
        if self.lr_rule == "none" or b_noise is None:
            return 1.0
        ratio = (1.0 + b_noise / self.base_batch_size) / (1.0 + b_noise / batch)
        return ratio if self.lr_rule == "sgd" else math.sqrt(ratio)

    def learning_rate(self, base_lr: float) -> float:
        """``base_lr * lr_factor()``: the rate for the current batch."""
        return float(base_lr) * self.lr_factor()

    # -- resuming ---------------------------------------------------------------------------
    def get_state(self) -> dict:
        """JSON-able: the current batch, the last estimate and the history."""
        return {"batch_size": self.batch_size, "b_noise": self.b_noise,
                "history": {k: list(v) for k, v in self.history.items()}}

    def set_state(self, state: dict) -> None:
        batch = int(state["batch_size"])
        if batch not in self.sizes:
            raise ValueError(f"the saved batch size {batch} is not allowed by this controller "
                             f"(sizes {self.sizes[0]}..{self.sizes[-1]}); resume with the options "
                             "of the run that saved it")
        self.batch_size = batch
        self.b_noise = None if state["b_noise"] is None else float(state["b_noise"])
        self.history = {k: list(v) for k, v in state["history"].items()}
