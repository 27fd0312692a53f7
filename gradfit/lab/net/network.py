"""Optimizers compared on a network: the setup of Figure 2 of the Adam paper.

Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", ICLR, Fig. 2a: a
784-1000-1000-10 ReLU network with dropout, trained on MNIST with mini-batches of 128,
comparing SGD with Nesterov momentum, Adagrad, RMSProp, AdaDelta and Adam, each at its best
learning rate; the figure plots the training cost against iterations.

Procedure of :func:`compare_networks` (every choice here is the default, each can be passed):

1. Data: the named dataset (``mnist``: 60000 train / 10000 test; ``digits``: 1438 / 359),
   optionally a random subset of ``train_examples`` training images (fixed by ``seed``).
2. Tuning: for each optimizer, every learning rate of its grid (:data:`GRIDS`, four
   log-spaced values from the usual value upwards) trains a fresh network for a short budget of
   ``tune_epochs`` epochs (a fraction < 1 means one pass over that fraction of the training
   set, drawn by ``seed``).  Score: the mean mini-batch training cost over the last quarter of
   those iterations (the quantity Fig. 2 plots); a run that diverges (non-finite loss) scores
   ``inf``.  The lowest score wins.
3. Full run: each optimizer at its chosen learning rate trains a fresh network for ``epochs``
   epochs.  The cost of every mini-batch is recorded (with dropout active, as in the paper's
   figure), then the network is evaluated without dropout on (up to ``eval_train_examples``
   of) the training set and on the test set.

Every network starts from the same weights and sees the same batches and dropout masks:
``set_random_seed(seed)`` is called before each model is built, and the model draws its
weights, permutations and masks from that one stream.  Mini-batch costs follow the batch-mean
convention of ``gradfit.losses`` (mean cross-entropy over the 128 examples).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ... import datasets, optimizers
from ...callbacks.base import Callback
from ...layers import Dense, Dropout, Input
from ...model import Sequential
from ...utils import set_random_seed

DEFAULT_OPTIMIZERS = ("nesterov", "adagrad", "rmsprop", "adadelta", "adam")

# Learning-rate grids: four values a factor ~3 apart, from the value usually recommended for
# this kind of network (SGD+momentum 0.01, Adagrad 0.01, RMSProp and Adam 1e-3, AdaDelta's
# multiplier 1.0 as in Zeiler 2012) up to ~10 times more, since a short tuning budget favours
# large steps.
GRIDS = {
    "sgd": (0.01, 0.03, 0.1, 0.3),
    "momentum": (0.01, 0.03, 0.1, 0.3),
    "nesterov": (0.01, 0.03, 0.1, 0.3),
    "adagrad": (0.003, 0.01, 0.03, 0.1),
    "rmsprop": (1e-4, 3e-4, 1e-3, 3e-3),
    "adadelta": (0.3, 1.0, 3.0, 10.0),
    "adam": (1e-4, 3e-4, 1e-3, 3e-3),
    "amsgrad": (1e-4, 3e-4, 1e-3, 3e-3),
    "adamw": (1e-4, 3e-4, 1e-3, 3e-3),
}

LABELS = {"sgd": "SGD", "momentum": "SGD momentum 0.9", "nesterov": "SGD Nesterov 0.9",
          "adagrad": "Adagrad", "rmsprop": "RMSProp", "adadelta": "AdaDelta", "adam": "Adam",
          "amsgrad": "AMSGrad", "adamw": "AdamW"}


@dataclass(frozen=True)
class NetSetup:
    """Everything that defines one network comparison (plain data, JSON-able via ``asdict``)."""
    data: str = "mnist"
    hidden: tuple = (1000, 1000)
    dropout: float = 0.5              # after each hidden layer (Srivastava et al. 2014's rate)
    batch_size: int = 128
    epochs: int = 10                  # full budget
    tune_epochs: float = 0.5          # short budget of each learning-rate trial
    train_examples: int | None = None  # None: the whole training set
    eval_train_examples: int | None = 10000
    seed: int = 0
    optimizers: tuple = DEFAULT_OPTIMIZERS
    grids: dict = field(default_factory=dict)  # overrides of GRIDS, by optimizer name

    def grid(self, name: str) -> tuple:
        return tuple(self.grids.get(name, GRIDS.get(name, ())))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["grids"] = {n: list(self.grid(n)) for n in self.optimizers}
        return d


PRESETS = {
    # Fig. 2a of the Adam paper, on the budget one 2-core CPU affords (see docs/optimizer-lab.md).
    "mnist": NetSetup(),
    # The quick variant: 64-128-128-10 on scikit-learn's 8x8 digits, well under a minute.
    # 11 batches an epoch: the short budget favours larger steps, so Adam's and RMSProp's grids
    # reach 1e-2.
    "digits": NetSetup(data="digits", hidden=(128, 128), epochs=60, tune_epochs=10,
                       eval_train_examples=None,
                       grids={"adam": (3e-4, 1e-3, 3e-3, 1e-2), "rmsprop": (3e-4, 1e-3, 3e-3, 1e-2)}),
}


def setup_for(data: str = "mnist", **overrides) -> NetSetup:
    """The preset for ``data`` (``"mnist"`` or ``"digits"``) with ``overrides`` applied."""
    if data not in PRESETS:
        raise ValueError(f"no network preset for data={data!r}: choose one of {', '.join(PRESETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    setup = replace(PRESETS[data], **overrides)
    check_setup(setup)
    return setup


def check_setup(s: NetSetup) -> None:
    """ValueError naming the bad field of ``s``."""
    for name in s.optimizers:
        optimizers.lookup(name)  # raises, listing the valid names
        if not s.grid(name):
            raise ValueError(f"optimizer {name!r} has no learning-rate grid: pass "
                             f"grids={{{name!r}: (lr1, lr2, ...)}}")
        if any(not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)) for lr in s.grid(name)):
            raise ValueError(f"grid of {name!r} must hold positive learning rates, got {s.grid(name)!r}")
    if not s.optimizers:
        raise ValueError("optimizers must name at least one optimizer, got an empty list")
    if not (isinstance(s.epochs, int) and s.epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {s.epochs!r}")
    if not (s.tune_epochs > 0 and (s.tune_epochs < 1 or float(s.tune_epochs).is_integer())):
        raise ValueError(f"tune_epochs must be a fraction in (0, 1) or a whole number of epochs, "
                         f"got {s.tune_epochs!r}")
    if not 0 <= s.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {s.dropout!r}")
    if s.train_examples is not None and s.train_examples < s.batch_size:
        raise ValueError(f"train_examples={s.train_examples} is smaller than one batch of "
                         f"{s.batch_size}; pass more examples or None for the whole set")


# ----------------------------------------------------------------------------- one run
class IterationCost(Callback):
    """Records the cost of every mini-batch.

    The loop reports ``logs["loss"]``, the running mean of the epoch's batch costs; with equal
    batches (the loop's ``drop_remainder=True``) the cost of batch ``k`` (1-based) is
    ``c_k = k * mean_k - (k - 1) * mean_{k-1}``.
    """

    def on_train_begin(self, logs=None):
        self.costs = []

    def on_epoch_begin(self, epoch, logs=None):
        self._prev = 0.0

    def on_train_batch_end(self, batch, logs=None):
        k, mean = batch + 1, float(logs["loss"])
        self.costs.append(k * mean - (k - 1) * self._prev)
        self._prev = mean


@dataclass
class NetRun:
    """One training run: the optimizer, its learning rate, the cost of every mini-batch."""
    optimizer: str
    learning_rate: float
    costs: np.ndarray
    steps_per_epoch: int
    seconds: float
    diverged: bool
    evaluation: dict = field(default_factory=dict)   # train_loss, test_loss, test_accuracy, ...
    tuning: list = field(default_factory=list)       # [(lr, score), ...] of the grid search
    input_dim: int = 0

    def score(self) -> float:
        """Mean cost over the last quarter of the iterations; ``inf`` if diverged."""
        if self.diverged or len(self.costs) == 0:
            return math.inf
        tail = self.costs[-max(1, len(self.costs) // 4):]
        value = float(np.mean(tail))
        return value if math.isfinite(value) else math.inf

    def final_cost(self) -> float:
        """Mean mini-batch cost over the last epoch (dropout active)."""
        if self.diverged:
            return math.nan
        return float(np.mean(self.costs[-self.steps_per_epoch:]))


def make_optimizer(name: str, learning_rate: float):
    """The optimizer ``name`` (a ``gradfit.optimizers`` name: ``nesterov`` is SGD with Nesterov
    momentum 0.9) with ``learning_rate``; every other setting is the library's default."""
    return optimizers.create(name, learning_rate=float(learning_rate))


def build_model(input_dim: int, setup: NetSetup, num_classes: int = 10):
    """Input -> [Dense(h, relu, He-uniform) -> Dropout]* -> Dense(classes, softmax)."""
    layers = [Input(shape=(input_dim,))]
    for h in setup.hidden:
        layers.append(Dense(h, activation="relu", kernel_initializer="he_uniform"))
        if setup.dropout:
            layers.append(Dropout(setup.dropout))
    layers.append(Dense(num_classes, activation="softmax"))
    return Sequential(layers)


def train_run(data, setup: NetSetup, name: str, learning_rate: float, epochs: int,
              evaluate: bool = True) -> NetRun:
    """Train a fresh network (seeded by ``setup.seed``) with one optimizer; see module doc.

    ``data``: ``(x_train, y_train, x_test, y_test, num_classes)``.
    """
    x, y, x_test, y_test, k = data
    set_random_seed(setup.seed)
    model = build_model(x.shape[1], setup, k)
    model.compile(optimizer=make_optimizer(name, learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rec = IterationCost()
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=setup.batch_size, epochs=epochs, verbose=0, callbacks=[rec])
    seconds = time.perf_counter() - t0
    steps = len(x) // setup.batch_size
    costs = np.asarray(rec.costs, dtype=np.float64)
    diverged = len(costs) < steps * epochs or not np.all(np.isfinite(costs))
    run = NetRun(name, float(learning_rate), costs, steps, seconds, diverged, input_dim=x.shape[1])
    if evaluate and not diverged:
        m = setup.eval_train_examples
        xe, ye = (x, y) if m is None or m >= len(x) else (x[:m], y[:m])
        tr = model.evaluate(xe, ye, batch_size=1000, return_dict=True)
        te = model.evaluate(x_test, y_test, batch_size=1000, return_dict=True)
        run.evaluation = {"train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
                          "train_eval_examples": len(xe),
                          "test_loss": te["loss"], "test_accuracy": te["accuracy"]}
    return run


def tuning_subset(data, setup: NetSetup):
    """``(data, epochs)`` of a learning-rate trial: a fraction ``tune_epochs < 1`` is one
    epoch over that fraction of the training set (the same examples for every trial)."""
    x, y, x_test, y_test, k = data
    if setup.tune_epochs >= 1:
        return data, int(setup.tune_epochs)
    n = max(setup.batch_size, int(round(setup.tune_epochs * len(x))))
    idx = np.random.default_rng(setup.seed + 1).permutation(len(x))[:n]
    return (x[idx], y[idx], x_test, y_test, k), 1


def tune(data, setup: NetSetup, name: str, log=None) -> tuple[float, list]:
    """Best learning rate of ``setup.grid(name)`` by the short-budget score, and every
    ``(lr, score)``.  Ties (all diverged included) go to the smallest learning rate."""
    sub, epochs = tuning_subset(data, setup)
    results = []
    for lr in setup.grid(name):
        # a grid is meant to reach rates that diverge: their overflow warnings are expected
        with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            run = train_run(sub, setup, name, lr, epochs, evaluate=False)
        results.append((float(lr), run.score()))
        if log:
            log(f"  tune {name:9s} lr={lr:<8g} score={run.score():.4f} ({run.seconds:.1f}s)")
    best = min(results, key=lambda r: (r[1], r[0]))[0]
    return best, results


def load_data(setup: NetSetup, data_dir=None):
    """``(x_train, y_train, x_test, y_test, num_classes)`` of ``setup.data``, subset applied."""
    ds = datasets.load(setup.data, seed=setup.seed, data_dir=data_dir)
    x, y = ds.x_train, ds.y_train
    if setup.train_examples is not None and setup.train_examples < len(x):
        idx = np.sort(np.random.default_rng(setup.seed).permutation(len(x))[:setup.train_examples])
        x, y = x[idx], y[idx]
    return x, y, ds.x_test, ds.y_test, ds.num_classes


def compare_networks(setup: NetSetup, data=None, data_dir=None, log=None) -> dict:
    """Tune then train every optimizer of ``setup``; ``{name: NetRun}`` in setup order.

    ``data`` (optional) replaces loading ``setup.data``; ``log`` is called with progress lines.
    """
    check_setup(setup)
    data = load_data(setup, data_dir) if data is None else data
    runs = {}
    for name in setup.optimizers:
        lr, results = tune(data, setup, name, log)
        run = train_run(data, setup, name, lr, setup.epochs)
        run.tuning = results
        runs[name] = run
        if log:
            ev = run.evaluation
            log(f"{name:9s} lr={lr:<8g} final cost {run.final_cost():.4f} "
                f"test acc {ev.get('test_accuracy', math.nan):.4f} ({run.seconds:.0f}s)")
    return runs
