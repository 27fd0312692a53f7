"""Learning-rate schedules: formulas, Keras / torch agreement, Robbins-Monro, serialization."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from gradfit import optimizers
from gradfit.optimizers import (SGD, Constant, CosineDecay, ExponentialDecay, InverseTimeDecay,
                                PolynomialDecay, StepDecay)

STEPS = [0, 1, 2, 5, 9, 10, 11, 37, 99, 100, 250]


def test_formulas():
    assert [InverseTimeDecay(0.5, 1, 0.1)(i) for i in (0, 10, 30)] == [0.5, 0.25, 0.125]
    assert InverseTimeDecay(1.0, 10, 1.0, staircase=True)(19) == 0.5
    assert ExponentialDecay(1.0, 10, 0.5)(15) == pytest.approx(0.5**1.5, rel=1e-15)
    assert ExponentialDecay(1.0, 10, 0.5, staircase=True)(19) == 0.5
    assert [StepDecay(1.0, 3, gamma=0.1)(i) for i in (0, 2, 3, 8)] == pytest.approx([1, 1, 0.1, 0.01])
    assert Constant(0.3)(1000) == 0.3
    c = CosineDecay(0.0, decay_steps=100, warmup_target=1.0, warmup_steps=10, alpha=0.1)
    assert [c(0), c(5), c(10)] == pytest.approx([0.0, 0.5, 1.0])
    assert c(60) == pytest.approx(0.1 + 0.9 * 0.5)             # halfway down the cosine
    assert c(110) == c(500) == pytest.approx(0.1)              # floor alpha * peak


def test_polynomial_decay_power_one_is_linear_to_the_end_rate():
    s = PolynomialDecay(0.1, 10, end_learning_rate=0.02)
    assert [s(i) for i in (0, 5, 10, 11, 1000)] == pytest.approx([0.1, 0.06, 0.02, 0.02, 0.02])
    c = PolynomialDecay(0.1, 10, end_learning_rate=0.02, cycle=True)
    # cycling: decay_steps grows to the next multiple of 10 at or above the step
    assert [c(0), c(10), c(11), c(20)] == pytest.approx([0.1, 0.02, 0.1 - 0.08 * 11 / 20, 0.02])


def test_inverse_time_satisfies_robbins_monro():
    """sum lr_i diverges (grows like log n), sum lr_i^2 converges."""
    s = InverseTimeDecay(1.0, 1, 1.0)
    lr = np.array([s(i) for i in range(200_000)])
    partial = np.cumsum(lr)
    assert partial[-1] - partial[99_999] > 0.6                 # ~ log 2: still growing
    sq = np.cumsum(lr**2)
    assert sq[-1] - sq[99_999] < 1e-5 and sq[-1] < math.pi**2 / 6


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


KERAS_PAIRS = [
    (ExponentialDecay(0.1, 10, 0.7), "ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10,
                                                             decay_rate=0.7)),
    (ExponentialDecay(0.1, 10, 0.7, staircase=True), "ExponentialDecay",
     dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.7, staircase=True)),
    (InverseTimeDecay(0.1, 4, 0.5), "InverseTimeDecay",
     dict(initial_learning_rate=0.1, decay_steps=4, decay_rate=0.5)),
    (CosineDecay(0.01, 100, alpha=0.05, warmup_target=0.1, warmup_steps=20), "CosineDecay",
     dict(initial_learning_rate=0.01, decay_steps=100, alpha=0.05, warmup_target=0.1, warmup_steps=20)),
    (CosineDecay(0.1, 50), "CosineDecay", dict(initial_learning_rate=0.1, decay_steps=50)),
    (PolynomialDecay(0.1, 40), "PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=40)),
    (PolynomialDecay(0.1, 40, 0.01, power=0.5), "PolynomialDecay",
     dict(initial_learning_rate=0.1, decay_steps=40, end_learning_rate=0.01, power=0.5)),
    (PolynomialDecay(0.1, 40, 0.01, power=2.0, cycle=True), "PolynomialDecay",
     dict(initial_learning_rate=0.1, decay_steps=40, end_learning_rate=0.01, power=2.0, cycle=True)),
]


@pytest.mark.parametrize("ours,name,kwargs", KERAS_PAIRS, ids=[f"{n}-{i}" for i, (_, n, _) in enumerate(KERAS_PAIRS)])
def test_matches_keras(ours, name, kwargs, keras):
    theirs = getattr(keras.optimizers.schedules, name)(**kwargs)
    expected = [float(keras.ops.convert_to_numpy(theirs(i))) for i in STEPS]
    # Keras evaluates schedules in float32
    np.testing.assert_allclose([ours(i) for i in STEPS], expected, rtol=1e-6)


@pytest.mark.parametrize("name,args", [("InverseTimeDecay", (0.1, 4, 0.5)),
                                       ("ExponentialDecay", (0.1, 10, 0.7, True)),
                                       ("CosineDecay", (0.1, 50, 0.05)),
                                       ("PolynomialDecay", (0.1, 30, 0.001, 3.0, True))])
def test_positional_arguments_mean_what_they_mean_in_keras(name, args, keras):
    # Keras code passes schedule arguments positionally too: same order, same schedule
    theirs = getattr(keras.optimizers.schedules, name)(*args)
    ours = getattr(optimizers, name)(*args)
    expected = [float(keras.ops.convert_to_numpy(theirs(i))) for i in STEPS]
    np.testing.assert_allclose([ours(i) for i in STEPS], expected, rtol=1e-6)


def test_step_decay_matches_torch_steplr():
    torch = pytest.importorskip("torch")
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.3)
    ours = StepDecay(0.2, 7, gamma=0.3)
    for i in range(40):
        assert ours(i) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), i
        opt.step()
        sched.step()


@pytest.mark.parametrize("schedule", [Constant(0.1), InverseTimeDecay(0.1, 1, 0.01), ExponentialDecay(0.1, 5, 0.9),
                                      StepDecay(0.1, 3), CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=2),
                                      PolynomialDecay(0.1, 7, 0.0, 2.0, True)])
def test_serialize_round_trip(schedule):
    config = json.loads(json.dumps(optimizers.serialize(schedule)))
    again = optimizers.deserialize(config)
    assert again == schedule and [again(i) for i in range(20)] == [schedule(i) for i in range(20)]
    opt = SGD(learning_rate=schedule)
    opt2 = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    assert [opt2.current_learning_rate(i) for i in range(20)] == [schedule(i) for i in range(20)]


def test_optimizer_uses_schedule_at_the_step_count():
    opt = SGD(learning_rate=StepDecay(1.0, 2, gamma=0.5), fused=False)
    p = np.zeros(1)
    state = opt.init(p)
    moves = []
    for _ in range(5):
        before = p.copy()
        opt.update(p, np.ones(1), state)
        moves.append(float(before[0] - p[0]))
    assert moves == [1.0, 1.0, 0.5, 0.5, 0.25]                # schedule(0) for the first update
    opt.learning_rate = 0.01                                   # a float replaces the schedule
    assert opt.current_learning_rate(1000) == 0.01


@pytest.mark.parametrize("make,bad", [
    (lambda: InverseTimeDecay(-0.1, 1, 0.1), "-0.1"), (lambda: InverseTimeDecay(0.1, 0, 0.1), "0"),
    (lambda: ExponentialDecay(0.1, 10, float("nan")), "nan"), (lambda: StepDecay(0.1, 0), "0"),
    (lambda: StepDecay(0.1, 2.5), "2.5"), (lambda: CosineDecay(0.1, -5), "-5"),
    (lambda: Constant(float("inf")), "inf"), (lambda: PolynomialDecay(0.1, 0), "0"),
    (lambda: PolynomialDecay(0.1, 10, power=-1.0), "-1.0")])
def test_rejects_bad_arguments(make, bad):
    with pytest.raises(ValueError, match=bad):
        make()


def test_unknown_schedule():
    with pytest.raises(ValueError, match="PiecewiseConstantDecay.*CosineDecay"):
        optimizers.schedules.deserialize({"class_name": "PiecewiseConstantDecay", "config": {}})
