"""Training recipes: plain data that every framework's runner reads the same way.

* ``same`` (issue 18): 784-512-512-10 ReLU, Glorot-uniform weights and zero biases in every
  framework (so the three train the same function; each framework's own default differs:
  torch's Linear is Kaiming-uniform with a=sqrt(5)), softmax cross-entropy on logits, Adam
  (lr 2e-3, betas 0.9/0.999, eps 1e-8), batch 256, the rate decayed linearly PER STEP to 2% of
  its start over 5 epochs and held there (Keras PolynomialDecay(2e-3, 5 * steps, 4e-5);
  torch LinearLR(1.0, 0.02, 5 * steps)), float32, at most 10 epochs.
* ``algoperf``: the network, loss and init of AlgoPerf's MNIST workload (784-128-10 sigmoid,
  lecun-normal truncated at 2 std, zero biases, softmax cross-entropy;
  ``algoperf/workloads/mnist/mnist_pytorch/workload.py`` and ``algoperf/init_utils.py``) with
  the optimizer of its development algorithm
  (``algorithms/development_algorithms/mnist/mnist_pytorch/submission.py``: Adam, global batch
  1024, constant rate) at lr 1e-2, the top of its tuning space
  (``algorithms/development_algorithms/mnist/tuning_search_space.json``: lr log-uniform in
  [1e-4, 1e-2]), betas 0.9/0.999, eps 1e-8: lr 1e-3 had not reached 0.97 after 30 epochs
  (0.9699 on ``algoperf-mnist-01``), 1e-2 did in 11 (one gradfit run each, seed 0).
* ``best``: gradfit's best recipe, read from ``best_recipe.json`` beside this file, which
  ``benchmarks/search_recipe.py`` writes (gradfit only).

gradfit only (issue 18 phase 2; other frameworks refuse them): ``batch_size="auto"``
(``fit(batch_size="auto")``: from ``auto_min`` up to ``auto_max``, grown toward the gradient
noise scale; the schedule's decay then runs over EXAMPLES, ``lr_at_epochs``, since the steps per
epoch vary), and ``lr_scaling="rule"``: the rate is ``learning_rate`` at batch ``lr_batch`` and
follows the batch by AdaptiveBatchSize's rule, the square root of McCandlish's eps_opt(B) ratio
for Adam/AdamW, the ratio itself for SGD (``gradfit.noise_scale.batch_controller``); at a fixed
batch B, where no noise scale is measured, that rule's large-noise limit: ``sqrt(B / lr_batch)``
(Adam) or ``B / lr_batch`` (SGD), the square-root and linear scaling rules.

``--recipe-json '{...}'`` on the command line overrides any field (the search uses it).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

BEST_FILE = Path(__file__).with_name("best_recipe.json")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCALINGS = ("none", "rule")
SCHEDULES = ("linear", "cosine", "constant")
INITS = ("glorot_uniform", "lecun_normal")


@dataclass(frozen=True)
class Recipe:
    name: str = "same"
    hidden: tuple = (512, 512)
    activation: str = "relu"            # relu | sigmoid | tanh
    init: str = "glorot_uniform"        # glorot_uniform | lecun_normal (truncated, AlgoPerf's)
    optimizer: str = "adam"             # adam | adamw | sgd
    learning_rate: float = 2e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    momentum: float = 0.0               # sgd only
    nesterov: bool = False              # sgd only
    weight_decay: float = 0.0           # adamw only (decoupled)
    batch_size: int | str = 256         # or "auto" (gradfit only)
    schedule: str = "linear"            # linear | cosine | constant, per step
    decay_epochs: float = 5.0           # linear/cosine: the decay spans this many epochs
    end_fraction: float = 0.02          # ... down to this fraction of the rate, then held
    max_epochs: int = 10                # a run that has not reached the target by then fails
    lr_scaling: str = "none"            # none | rule (gradfit only; module docstring)
    lr_batch: int = 256                 # rule: the batch learning_rate is meant for
    auto_min: int = 32                  # batch_size "auto": the first and smallest batch
    auto_max: int = 4096                # ... and the largest

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}"),
            (self.init in INITS, f"init must be one of {INITS}"),
            (self.activation in ("relu", "sigmoid", "tanh"), "activation must be relu|sigmoid|tanh"),
            (len(self.hidden) >= 1 and min(self.hidden) >= 1, "hidden must be positive widths"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.batch_size == "auto" or isinstance(self.batch_size, int) and self.batch_size >= 1,
             "batch_size must be an int >= 1 or 'auto'"),
            (self.lr_scaling in LR_SCALINGS, f"lr_scaling must be one of {LR_SCALINGS}"),
            (all(isinstance(v, int) and v >= 1 for v in (self.lr_batch, self.auto_min, self.auto_max))
             and self.auto_min <= self.auto_max,
             "lr_batch, auto_min <= auto_max must be ints >= 1"),
            (self.decay_epochs > 0 and 0 <= self.end_fraction <= 1,
             "decay_epochs must be > 0 and end_fraction in [0, 1]"),
            (isinstance(self.max_epochs, int) and self.max_epochs >= 1, "max_epochs must be an int >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"recipe {self.name!r}: {msg}; got {self.to_dict()}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @property
    def gradfit_only(self) -> bool:
        """Whether the recipe uses what only gradfit has (auto batch, the scaling rule)."""
        return self.batch_size == "auto" or self.lr_scaling != "none"

    def train_command(self, epochs: int, seed: int = 0, data: str = "mnist") -> str | None:
        """The ``gradfit train`` command that trains this recipe on ``data``'s whole training
        set (MNIST: 60,000 images) for ``epochs`` epochs (no validation split, no early stop)
        and reports the test accuracy at its end; None where the command line cannot say the
        recipe (``auto`` with a decay, which the benchmark runs over examples; AlgoPerf's
        workloads, whose split and inputs differ)."""
        auto = self.batch_size == "auto"
        if (auto and self.schedule != "constant") or data not in ("mnist", "digits"):
            return None
        lr = self.learning_rate * (1.0 if auto else self.batch_factor(self.batch_size))
        argv = ["gradfit", "train", "--data", data, "--hidden", ",".join(map(str, self.hidden)),
                "--activation", self.activation, "--init", self.init, "--optimizer", self.optimizer,
                "--lr", f"{lr:g}"]
        if self.optimizer == "sgd":
            argv += ["--momentum", f"{self.momentum:g}"] + (["--nesterov"] if self.nesterov else [])
        else:
            argv += ["--beta-1", f"{self.beta_1:g}", "--beta-2", f"{self.beta_2:g}",
                     "--epsilon", f"{self.epsilon:g}"]
            if self.optimizer == "adamw":
                argv += ["--weight-decay", f"{self.weight_decay:g}"]
        if self.schedule != "constant":
            argv += ["--schedule", self.schedule, "--decay-epochs", f"{self.decay_epochs:g}",
                     "--end-lr-fraction", f"{self.end_fraction:g}"]
        argv += ["--batch-size", str(self.batch_size), "--epochs", str(epochs),
                 "--val-fraction", "0", "--patience", "0", "--seed", str(seed)]
        return " ".join(argv)

    def batch_factor(self, batch: int) -> float:
        """The rate's factor at a FIXED batch: 1, or the rule's large-noise limit."""
        if self.lr_scaling == "none":
            return 1.0
        ratio = batch / self.lr_batch
        return ratio if self.optimizer == "sgd" else math.sqrt(ratio)

    def lr_at_epochs(self, epochs: float) -> float:
        """The base rate after ``epochs`` epochs' worth of examples (the decay over examples
        that batch_size "auto" follows): ``lr_at`` with the progress ``epochs / decay_epochs``."""
        return self._decayed(min(epochs / self.decay_epochs, 1.0))

    def decay_steps(self, steps_per_epoch: int) -> int:
        return max(1, round(self.decay_epochs * steps_per_epoch))

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The rate of update ``step`` (0-based), the formula every framework's schedule follows.

        linear: ``lr0 * (1 - (1 - f) * min(step, N) / N)``; cosine: ``lr0 * (f + (1 - f) *
        (1 + cos(pi * min(step, N) / N)) / 2)``; N = decay_steps, f = end_fraction."""
        n = self.decay_steps(steps_per_epoch)
        return self._decayed(min(step, n) / n)

    def _decayed(self, p: float) -> float:
        f = self.end_fraction
        if self.schedule == "constant":
            return self.learning_rate
        if self.schedule == "linear":
            return self.learning_rate * (1.0 - (1.0 - f) * p)
        return self.learning_rate * (f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * p)))


SAME = Recipe()
ALGOPERF = Recipe(name="algoperf", hidden=(128,), activation="sigmoid", init="lecun_normal",
                  learning_rate=1e-2, batch_size=1024, schedule="constant", max_epochs=30)


def get(name: str, overrides: dict | None = None) -> Recipe:
    """The recipe called ``name`` ("same", "algoperf", "best"), with ``overrides`` applied."""
    if name == "same":
        recipe = SAME
    elif name == "algoperf":
        recipe = ALGOPERF
    elif name == "best":
        if not BEST_FILE.exists():
            raise SystemExit(f"--recipe best reads {BEST_FILE}, which does not exist yet: run "
                             "benchmarks/search_recipe.py first (it writes the winner there)")
        recipe = from_dict(json.loads(BEST_FILE.read_text())["recipe"])
    else:
        raise SystemExit(f"unknown recipe {name!r}; choose same, algoperf or best")
    if overrides:
        unknown = set(overrides) - {f.name for f in fields(Recipe)}
        if unknown:
            raise SystemExit(f"--recipe-json has unknown fields {sorted(unknown)}; known: "
                             f"{[f.name for f in fields(Recipe)]}")
        recipe = replace(recipe, **overrides)
    return recipe


def from_dict(d: dict) -> Recipe:
    return Recipe(**d)
