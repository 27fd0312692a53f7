"""The second-order lab's problems: MATLAB's SIN, PARITY and CANCER benchmarks as rebuilt here
(shapes, weight counts, targets), LM reaching MATLAB's goals on SIN and PARITY, and the width
sweep's weight counts."""
import numpy as np
import pytest

from gradfit.lab.second_order.problems import (build_model, cancer_problem, parity_problem,
                                               sin_problem, width_sweep)
from gradfit.optimizers.second_order import LevenbergMarquardt, Objective


def test_problems_as_matlab_defines_them():
    sin, parity, cancer = sin_problem(), parity_problem(), cancer_problem()
    assert sin.x.shape == (41, 1) and sin.architecture == (1, 5, 1) and sin.weights == 16
    assert np.allclose(sin.y, np.sin(np.pi * sin.x)) and sin.target == 0.002
    assert sin.activations == ("tanh", "linear")
    assert parity.x.shape == (8, 3) and parity.weights == 4 * 10 + 11 * 10 + 11 == 161
    assert sorted(map(tuple, parity.x)) == sorted({(a, b, c) for a in (-1, 1) for b in (-1, 1)
                                                   for c in (-1, 1)})
    odd = (parity.x > 0).sum(axis=1) % 2 == 1
    assert np.array_equal(parity.y[:, 0], np.where(odd, 1.0, -1.0)) and parity.target == 0.001
    assert cancer.x.shape == (569, 30) and cancer.architecture == (30, 5, 5, 2)
    assert cancer.x.min() == -1.0 and cancer.x.max() == 1.0
    assert np.array_equal(cancer.y.sum(axis=1), np.ones(569)) and int(cancer.y[:, 1].sum()) == 212
    assert cancer.target == 0.012 and cancer.weights == 31 * 5 + 6 * 5 + 6 * 2


@pytest.mark.parametrize("problem,iterations", [(sin_problem, 40), (parity_problem, 30)])
def test_lm_reaches_matlabs_goal(problem, iterations):
    p = problem()
    model = build_model(p, seed=0)
    assert model.count_params() == p.weights
    objective = Objective(model, p.x, p.y, loss=p.loss)
    method = LevenbergMarquardt()
    state = method.init(model.params)
    for _ in range(iterations):
        loss, info = method.iterate(objective, model.params, state)
        if loss <= p.target or info["stop"]:
            break
    assert loss <= p.target, f"mse {loss:.4g} after {state['step']} iterations"


def test_width_sweep_spans_twenty_to_a_hundred_thousand_weights():
    sweep = width_sweep("sin")
    assert [p.architecture for p in sweep] == [(1, 6, 1), (1, 33, 1), (1, 333, 1), (1, 3333, 1),
                                               (1, 33333, 1)]
    assert [p.weights for p in sweep] == [19, 100, 1000, 10000, 100000]
    assert [p.weights for p in width_sweep("cancer", weights=(20, 1000))] == [35, 992]
    with pytest.raises(ValueError, match="'sin' or 'cancer', got 'parity'"):
        width_sweep("parity")
