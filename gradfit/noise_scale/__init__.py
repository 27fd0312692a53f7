"""Gradient noise scale and critical batch size (McCandlish, Kaplan, Amodei et al. 2018,
"An Empirical Model of Large-Batch Training", arXiv:1812.06162).

* ``estimator``: B_simple = tr(Sigma)/|G|^2 from squared gradient norms at two batch sizes,
  smoothed by separate EMAs of tr(Sigma) and |G|^2 (App. A.1).
* ``per_example``: exact per-example gradient norms of Dense layers from (x, dz), and the
  one-batch unbiased estimates.
* ``critical``: fit (S/S_min - 1)(E/E_min - 1) = 1 to a batch-size sweep; B_crit = E_min/S_min.
* ``plots``: the frontier and B_simple over training (PNG, matplotlib imported lazily).
* ``batch_controller``: the next global batch size and learning-rate factor from a stream of
  B_noise estimates (for ``batch_size="auto"``), pure logic.

The callback ``gradfit.callbacks.gradient_noise_scale.GradientNoiseScale`` uses these during
training.
"""
from gradfit.noise_scale.batch_controller import BatchSizeController, check_auto_batch_options
from gradfit.noise_scale.critical import b_crit, fit_steps_examples, frontier
from gradfit.noise_scale.estimator import NoiseScaleEstimator, two_batch_estimates
from gradfit.noise_scale.per_example import (
    NoiseEstimate,
    b_simple_exact,
    exact_estimates,
    mean_grad_sq_norm,
    per_example_grad_sq_norms,
)
from gradfit.noise_scale.plots import plot_b_simple, plot_frontier

__all__ = [
    "NoiseScaleEstimator", "two_batch_estimates",
    "NoiseEstimate", "per_example_grad_sq_norms", "mean_grad_sq_norm", "exact_estimates",
    "b_simple_exact",
    "fit_steps_examples", "b_crit", "frontier",
    "plot_frontier", "plot_b_simple",
    "BatchSizeController", "check_auto_batch_options",
]
