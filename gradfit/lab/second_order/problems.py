"""The problems of the second-order lab: MATLAB's training-function benchmarks rebuilt from
public data, and a width sweep from ~20 to ~100,000 weights.

MATLAB's "Choose a Multilayer Neural Network Training Function" (Deep Learning Toolbox
documentation) times its training functions (trainlm, trainbfg, trainscg, ...) on six
problems, 30 random initialisations each, every run stopped at a mean squared error goal:

* **SIN**: a 1-5-1 network, tansig hidden and purelin output units, approximating "a single
  period of a sine wave", to mse 0.002.  The page gives no sample count: here 41 points
  evenly spaced on [-1, 1] with targets sin(pi x), already in [-1, 1] (what MATLAB's default
  ``mapminmax`` would make of them).
* **PARITY**: 3-bit parity, a 3-10-10-1 network with tansig units in every layer, output 1 for
  an odd number of ones and -1 otherwise, to mse 0.001: the 8 patterns, bits as -1 / +1
  (``mapminmax`` of 0 / 1).
* **CANCER**: MATLAB uses the Wisconsin breast cancer data of W. H. Wolberg (699 cases, 9
  cytology scores: ``cancer_dataset``) with a 9-5-5-2 tansig network to mse 0.012.  That file
  is not bundled with scikit-learn; its bundled ``load_breast_cancer`` is the *diagnostic*
  Wisconsin set of the same group (569 cases, 30 image features).  So this is a 30-5-5-2
  tansig network on that set: inputs mapped to [-1, 1] per feature, targets one-hot 0 / 1
  (benign, malignant) as in ``cancer_dataset``, the same goal 0.012.  Not MATLAB's numbers.

The ENGINE, CHOLESTEROL and DIABETES sets of the same page are MATLAB's own files: left out.

**Width sweep** (`width_sweep`): one problem with the hidden layer widened so the weights go
from ~20 to ~100,000; where each method stops being the fastest, and where J^T J (n^2 float64)
stops fitting in memory (at 100,000 weights it is 80 GB), is what the lab measures.

Every problem is float64 with mse as the loss (MATLAB's ``performFcn``), as a `Problem`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...layers import Dense, Input
from ...model import Sequential
from ...utils import set_random_seed


class Problem(NamedTuple):
    """x (N, inputs) and y (N, outputs), float64; ``architecture``: the widths, input first;
    ``activations``: one per Dense layer (Keras names: tansig = "tanh", purelin = "linear");
    ``target``: the mse at which MATLAB's benchmark stops a run."""
    name: str
    x: np.ndarray
    y: np.ndarray
    architecture: tuple
    activations: tuple
    target: float
    loss: str = "mse"

    @property
    def weights(self) -> int:
        """Number of weights and biases: sum of (n_in + 1) n_out over the layers."""
        a = self.architecture
        return sum((i + 1) * o for i, o in zip(a[:-1], a[1:]))


def sin_problem(points: int = 41) -> Problem:
    """SIN: 1-5-1, tanh + linear, one period of sin(pi x) on [-1, 1], goal mse 0.002."""
    x = np.linspace(-1.0, 1.0, points)[:, None]
    return Problem("sin", x, np.sin(np.pi * x), (1, 5, 1), ("tanh", "linear"), 0.002)


def parity_problem(bits: int = 3) -> Problem:
    """PARITY: 3-10-10-1, tanh everywhere, the 2^bits patterns in {-1, 1}, target +1 for an odd
    number of ones (+1 bits) and -1 otherwise, goal mse 0.001."""
    patterns = np.array([[(k >> b) & 1 for b in range(bits)] for k in range(2 ** bits)])
    y = np.where(patterns.sum(axis=1) % 2 == 1, 1.0, -1.0)[:, None]
    return Problem("parity", 2.0 * patterns - 1.0, y, (bits, 10, 10, 1), ("tanh",) * 3, 0.001)


def cancer_problem() -> Problem:
    """CANCER (scikit-learn's diagnostic Wisconsin set; see the module docstring): 30-5-5-2,
    tanh everywhere, inputs in [-1, 1], one-hot 0/1 targets (benign, malignant), goal 0.012."""
    from sklearn.datasets import load_breast_cancer   # optional dependency, imported on use
    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    x = 2.0 * (x - lo) / (hi - lo) - 1.0
    malignant = (np.asarray(data.target) == 0).astype(np.float64)   # sklearn: 0 = malignant
    y = np.stack([1.0 - malignant, malignant], axis=1)
    return Problem("cancer", x, y, (30, 5, 5, 2), ("tanh",) * 3, 0.012)


PROBLEMS = {"sin": sin_problem, "parity": parity_problem, "cancer": cancer_problem}


def width_sweep(problem: str = "sin", weights=(20, 100, 1_000, 10_000, 100_000)) -> list[Problem]:
    """The named one-hidden-layer problem (sin: 1-h-1; cancer: 30-h-2) at the hidden widths h
    whose weight counts come closest to each entry of ``weights``."""
    if problem not in ("sin", "cancer"):
        raise ValueError(f"width_sweep needs a one-hidden-layer problem: 'sin' or 'cancer', "
                         f"got {problem!r}")
    base = PROBLEMS[problem]()
    n_in, n_out = base.architecture[0], base.architecture[-1]
    out = []
    for target_weights in weights:
        # (n_in + 1) h + (h + 1) n_out = target  ->  h = (target - n_out) / (n_in + 1 + n_out)
        h = max(1, round((int(target_weights) - n_out) / (n_in + 1 + n_out)))
        out.append(base._replace(name=f"{problem}-{h}", architecture=(n_in, h, n_out),
                                 activations=(base.activations[0], base.activations[-1])))
    return out


def build_model(problem: Problem, seed: int = 0) -> Sequential:
    """A float64 Sequential of the problem's architecture, weights drawn from `seed` (Keras's
    Glorot-uniform kernels and zero biases; MATLAB uses Nguyen-Widrow: a difference)."""
    set_random_seed(seed)
    a = problem.architecture
    layers = [Input(shape=(a[0],))]
    layers += [Dense(units, activation=act) for units, act in zip(a[1:], problem.activations)]
    model = Sequential(layers, dtype="float64")
    model.build()
    return model
