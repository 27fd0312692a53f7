"""The batch-size controller of issue 18 (gradfit/noise_scale/batch_controller.py), fed scripted
noise-scale estimates: no training.  The reference values are McCandlish et al.'s formulas
written out in the tests."""
import math

import pytest

from gradfit.noise_scale import BatchSizeController, NoiseScaleEstimator, check_auto_batch_options
from gradfit.noise_scale.batch_controller import allowed_sizes


def mccandlish_cost(b, b_noise):
    """(S/S_min)(E/E_min) with S = S_min (1 + B_noise/B), E = E_min (1 + B/B_noise)."""
    return (1 + b_noise / b) * (1 + b / b_noise)


# -- the allowed sizes and the options ---------------------------------------------------------
def test_allowed_sizes_pow2_and_multiples_of_the_ranks():
    assert allowed_sizes(32, 1024) == (32, 64, 128, 256, 512, 1024)
    assert allowed_sizes(30, 200, ranks=3) == (48, 96, 192)          # 3 x 2**k
    assert allowed_sizes(7, 20, ranks=3, rounding="multiple") == (9, 12, 15, 18)
    ctl = BatchSizeController(24, 384, ranks=3)
    assert ctl.sizes == (24, 48, 96, 192, 384) and ctl.batch_size == 24
    assert all(b % 3 == 0 for b in ctl.sizes)


@pytest.mark.parametrize("kwargs, words", [
    (dict(min_batch_size=512, max_batch_size=64), ["min_batch_size=512", "max_batch_size=64", "swap"]),
    (dict(min_batch_size=33, max_batch_size=1000, ranks=3), ["max_batch_size=1000", "3 ranks", "999"]),
    (dict(min_batch_size=32, max_batch_size=1024, ranks=3), ["min_batch_size=32", "3 ranks", "30 or 33"]),
    (dict(min_batch_size=32, max_batch_size=1024, steps_per_epoch=100),
     ["steps_per_epoch=100", "omit steps_per_epoch"]),
    (dict(min_batch_size=64, max_batch_size=1024, max_fit=48), ["max_fit=48", "min_batch_size=64"]),
    (dict(min_batch_size=256, max_batch_size=1024, n_examples=100), ["256", "100 training examples"]),
    (dict(min_batch_size=33, max_batch_size=63), ["no allowed batch size", "rounding='multiple'"]),
    (dict(min_batch_size=32, max_batch_size=64, rounding="even"), ["rounding", "'even'"]),
    (dict(min_batch_size=0, max_batch_size=64), ["min_batch_size", ">= 1", "0"]),
])
def test_contradictory_options_are_refused_with_the_values_and_the_fix(kwargs, words):
    with pytest.raises(ValueError) as err:
        check_auto_batch_options(**kwargs)
    for w in words:
        assert w in str(err.value)
    with pytest.raises(ValueError):      # the controller refuses them the same way
        BatchSizeController(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(threshold=1.0), dict(threshold=-0.1), dict(max_factor=1.0),
                                    dict(lr_rule="lars"), dict(base_batch_size=0)])
def test_bad_hyperparameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        BatchSizeController(32, 1024, **kwargs)


def test_memory_cap_and_training_set_bound_the_sizes():
    assert BatchSizeController(32, 4096, max_fit=700).sizes[-1] == 512
    assert BatchSizeController(32, 4096, n_examples=1000).sizes[-1] == 512
    ctl = BatchSizeController(32, 4096, max_fit=700)
    assert ctl.update(1e6) == 512            # an enormous noise scale still stops at the cap


# -- the choice ------------------------------------------------------------------------------
@pytest.mark.parametrize("b_noise", [20.0, 64.0, 90.0, 91.0, 300.0, 5000.0])
def test_best_is_the_least_cost_size_of_mccandlish_model(b_noise):
    ctl = BatchSizeController(16, 1024)
    expected = min(ctl.sizes, key=lambda b: mccandlish_cost(b, b_noise))
    assert ctl.best(b_noise) == expected
    if b_noise == 64.0:                      # the cost is smallest at B = B_noise itself
        assert ctl.best(b_noise) == 64


def test_growing_noise_grows_the_batch_monotonically_to_the_critical_size():
    # B_noise grows as the loss falls (McCandlish et al. Section 3): 20 -> 2000 over 50 updates
    script = [20.0 * 100 ** (i / 49) for i in range(50)]
    ctl = BatchSizeController(16, 4096)
    batches = [ctl.update(b) for b in script]
    assert batches == sorted(batches)
    assert batches[0] == 16 and batches[-1] == ctl.best(script[-1]) == 2048
    # each change saved at least 5% of the cost of staying
    for i in range(1, len(batches)):
        if batches[i] != batches[i - 1]:
            assert mccandlish_cost(batches[i], script[i]) <= 0.95 * mccandlish_cost(batches[i - 1], script[i])


def test_an_estimate_hovering_at_a_boundary_does_not_make_the_batch_oscillate():
    # cost(64) == cost(128) at B_noise = sqrt(64 * 128) = 90.5; the estimate wobbles around it
    script = [85.0, 96.0] * 10
    steady = BatchSizeController(64, 1024, shrink=True)
    assert len(set(steady.update(b) for b in script)) == 1          # hysteresis (adaptdl#27)
    nervous = BatchSizeController(64, 1024, shrink=True, threshold=0.0)
    changes = [nervous.update(b) for b in script]
    assert sum(a != b for a, b in zip(changes, changes[1:])) >= 10   # without it, every update


def test_the_batch_does_not_shrink_unless_asked():
    grow_only = BatchSizeController(32, 1024)
    assert grow_only.update(400.0) == 512 == grow_only.best(400.0)
    assert grow_only.best(40.0) == 32
    assert grow_only.update(40.0) == 512
    both = BatchSizeController(32, 1024, shrink=True)
    both.update(400.0)
    assert both.update(40.0) == 32


def test_max_factor_limits_one_change():
    ctl = BatchSizeController(32, 4096, max_factor=2.0)
    assert [ctl.update(3000.0) for _ in range(5)] == [64, 128, 256, 512, 1024]


def test_none_while_the_estimator_warms_up_keeps_the_batch_and_the_rate():
    ctl = BatchSizeController(32, 1024)
    assert [ctl.update(None) for _ in range(3)] == [32, 32, 32]
    assert ctl.lr_factor() == 1.0
    assert ctl.history["b_noise"] == [None, None, None]
    ctl.update(300.0)
    assert ctl.update(None) == ctl.batch_size > 32      # a later gap keeps the last decision
    assert ctl.history["b_noise"][-1] == 300.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -5.0, 0.0])
def test_a_non_finite_or_non_positive_estimate_is_refused(bad):
    ctl = BatchSizeController(32, 1024)
    with pytest.raises(ValueError, match="B_noise=") as err:
        ctl.update(bad)
    assert repr(bad) in str(err.value)
    assert ctl.batch_size == 32 and ctl.history["update"] == []   # nothing was recorded


def test_a_measured_step_time_turns_the_cost_into_wall_time():
    b_noise = 200.0
    step_time = lambda b: 1e-3 + 2e-5 * b           # noqa: E731 - a fixed overhead + per example
    ctl = BatchSizeController(16, 4096, step_time=step_time)
    brute = min(ctl.sizes, key=lambda b: (1 + b_noise / b) * step_time(b))
    assert ctl.best(b_noise) == brute
    free = BatchSizeController(16, 4096, step_time=lambda b: 1.0)   # a step costs the same at any B
    assert free.best(b_noise) == 4096


# -- the learning rate -----------------------------------------------------------------------
def eps_opt(b, b_noise, eps_max=1.0):
    """McCandlish et al. 2018, Section 2.2: eps_opt(B) = eps_max / (1 + B_noise / B)."""
    return eps_max / (1 + b_noise / b)


def test_sgd_rule_is_the_ratio_of_mccandlish_optimal_rates():
    ctl = BatchSizeController(32, 4096, lr_rule="sgd")
    ctl.update(500.0)
    b = ctl.batch_size
    assert ctl.lr_factor() == pytest.approx(eps_opt(b, 500.0) / eps_opt(32, 500.0), rel=1e-12)
    # linear scaling while B << B_noise, flat once B >> B_noise
    assert ctl.lr_factor(64, 1e7) == pytest.approx(2.0, rel=1e-4)
    assert ctl.lr_factor(4096, 1.0) == pytest.approx(ctl.lr_factor(2048, 1.0), rel=1e-3)
    assert ctl.learning_rate(0.1) == pytest.approx(0.1 * ctl.lr_factor())


def test_adam_rule_is_the_square_root_of_the_sgd_rule():
    sgd = BatchSizeController(32, 4096, lr_rule="sgd")
    adam = BatchSizeController(32, 4096, lr_rule="adam")
    for b, bn in [(64, 100.0), (512, 100.0), (1024, 3000.0)]:
        assert adam.lr_factor(b, bn) == pytest.approx(math.sqrt(sgd.lr_factor(b, bn)), rel=1e-12)
    assert adam.lr_factor(128, 1e8) == pytest.approx(2.0, rel=1e-4)   # Malladi: sqrt(128/32)
    assert BatchSizeController(32, 4096, lr_rule="none").lr_factor(1024, 50.0) == 1.0


def test_base_batch_size_sets_where_the_factor_is_one():
    ctl = BatchSizeController(32, 4096, base_batch_size=256, lr_rule="sgd")
    assert ctl.lr_factor(256, 123.0) == pytest.approx(1.0)
    assert ctl.lr_factor(32, 123.0) < 1.0


# -- resuming and the estimator ----------------------------------------------------------------
def test_a_resumed_controller_continues_exactly():
    script = [None, None, 50.0, 80.0, 150.0, 140.0, 400.0, 900.0, 850.0, 2000.0]
    whole = BatchSizeController(32, 2048)
    full = [whole.update(b) for b in script]
    first = BatchSizeController(32, 2048)
    head = [first.update(b) for b in script[:5]]
    second = BatchSizeController(32, 2048)
    second.set_state(first.get_state())
    assert head + [second.update(b) for b in script[5:]] == full
    assert second.get_state() == whole.get_state()
    with pytest.raises(ValueError, match="not allowed"):
        BatchSizeController(32, 256).set_state(whole.get_state())


def test_driven_by_the_noise_scale_estimator():
    # two-batch norms of a problem with |G|^2 = 1 and tr(Sigma) = 300: B_simple -> 300
    est = NoiseScaleEstimator(b_small=32, b_big=256, ema=0.9, min_steps=5)
    ctl = BatchSizeController(32, 4096)
    batches = []
    for _ in range(30):
        est.update(1 + 300 / 32, 1 + 300 / 256)
        batches.append(ctl.update(est.b_simple))
    assert batches[:4] == [32] * 4                      # warming up: b_simple is None
    assert est.b_simple == pytest.approx(300.0)
    assert batches[-1] == ctl.best(300.0) == 256
