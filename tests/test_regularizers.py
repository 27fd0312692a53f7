"""Weight penalties: values, gradients, lookup, and the equivalence with coupled weight decay
(Keras parity of whole training runs is in test_keras_namespaces.py)."""
import numpy as np
import pytest

import gradfit
from gradfit import regularizers as R


def test_values_gradients_and_lookup():
    w = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert R.L2(0.5)(w) == pytest.approx(0.5 * 14)
    assert R.L1(0.1)(w) == pytest.approx(0.1 * 6)
    assert R.L1L2(l1=0.1, l2=0.5)(w) == pytest.approx(0.6 + 7)
    g = np.zeros_like(w)
    R.L1L2(l1=0.1, l2=0.5).add_gradient(w, g)
    np.testing.assert_allclose(g, 0.1 * np.sign(w) + 2 * 0.5 * w)   # sign(0) = 0
    assert R.get("l2").l2 == 0.01 and R.get("L1").l1 == 0.01 and R.get(None) is None
    again = R.get(R.serialize(R.L1L2(l1=0.2, l2=0.3)))
    assert (type(again), again.l1, again.l2) == (R.L1L2, 0.2, 0.3)
    for bad in ("l3", {"class_name": "Orthogonal"}, 0.01):
        with pytest.raises(ValueError, match="unknown regularizer"):
            R.get(bad)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_l2_penalty_steps_exactly_like_coupled_weight_decay(optimizer):
    # the docstring's claim: L2(l2) on every weight == weight_decay = 2 * l2 (torch's coupled form)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.integers(0, 3, 32)

    def model(reg, wd):
        gradfit.set_random_seed(0)
        m = gradfit.Sequential([gradfit.Input(shape=(4,)),
                                gradfit.Dense(3, activation="softmax", kernel_regularizer=reg,
                                              bias_regularizer=reg)], dtype="float64")
        opt = (gradfit.optimizers.Adam(0.01, weight_decay=wd) if optimizer == "adam"
               else gradfit.optimizers.SGD(0.1, weight_decay=wd))
        m.compile(opt, "sparse_categorical_crossentropy")
        m.build()
        return m
    penalised, decayed = model(R.L2(0.05), None), model(None, 0.1)
    for _ in range(5):
        loss_p = penalised.train_on_batch(x, y)
        loss_d = decayed.train_on_batch(x, y)
        assert loss_p > loss_d                      # the penalty shows in the reported loss
    np.testing.assert_array_equal(penalised.params, decayed.params)
