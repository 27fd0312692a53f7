"""gradfit.lab.net network comparison and `gradfit compare net`: a tiny digits budget, offline."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from gradfit.lab import net as lab
from gradfit.lab.net.network import IterationCost

pytest.importorskip("matplotlib")

# Two optimizers, two learning rates each, 3 epochs of digits (11 batches of 128 each).
TINY = dict(epochs=3, tune_epochs=1, optimizers=("nesterov", "adam"),
            grids={"nesterov": (0.01, 0.1), "adam": (1e-3, 1e-2)})


@pytest.fixture(scope="module")
def digits_data():
    return lab.load_data(lab.setup_for("digits"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, digits_data):
    out = tmp_path_factory.mktemp("net")
    setup = lab.setup_for("digits", **TINY)
    return out, setup, lab.run_net_comparison(out, setup, data=digits_data)


def test_run_folder_files_are_written_and_non_empty(tiny_run):
    out, _, result = tiny_run
    for name in ("cost.png", "tuning.png", "results.csv", "tuning.csv", "curves.csv",
                 "setup.json", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![training cost](cost.png)" in (out / "summary.md").read_text()


def test_results_csv_has_one_row_per_optimizer_with_a_grid_learning_rate(tiny_run):
    out, setup, _ = tiny_run
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(r["optimizer"] for r in rows) == ["adam", "nesterov"]
    for r in rows:
        assert float(r["learning_rate"]) in setup.grid(r["optimizer"])
        assert int(r["iterations"]) == 3 * (1438 // 128)
        assert 0.0 < float(r["final_cost"]) < math.log(10) * 1.5
        assert 0.5 < float(r["test_accuracy"]) <= 1.0  # 3 epochs already beat chance (0.1)
    costs = [float(r["final_cost"]) for r in rows]
    assert costs == sorted(costs)  # best first


def test_tuning_csv_holds_every_grid_point_and_the_chosen_rate_is_the_best(tiny_run):
    out, setup, _ = tiny_run
    rows = list(csv.DictReader(open(out / "tuning.csv")))
    assert len(rows) == 4
    chosen = {r["optimizer"]: float(r["learning_rate"]) for r in csv.DictReader(open(out / "results.csv"))}
    for name in setup.optimizers:
        scores = {float(r["learning_rate"]): float(r["score"]) for r in rows if r["optimizer"] == name}
        assert set(scores) == set(setup.grid(name))
        assert chosen[name] == min(scores, key=scores.get)
    assert json.loads((out / "setup.json").read_text())["grids"]["adam"] == [1e-3, 1e-2]


def test_curves_csv_matches_the_iterations(tiny_run):
    out, _, _ = tiny_run
    rows = list(csv.reader(open(out / "curves.csv")))
    assert rows[0] == ["iteration", "nesterov", "adam"]
    assert len(rows) - 1 == 33 and all(float(v) > 0 for v in rows[1][1:])


def test_iteration_cost_recovers_each_batch_cost_from_running_means():
    costs = [2.0, 1.0, 4.0, 0.5, 3.0]
    cb = IterationCost()
    cb.on_train_begin()
    for epoch, chunk in enumerate((costs[:3], costs[3:])):
        cb.on_epoch_begin(epoch)
        for k, _ in enumerate(chunk):
            cb.on_train_batch_end(k, {"loss": float(np.mean(chunk[:k + 1]))})
    np.testing.assert_allclose(cb.costs, costs, rtol=1e-12)


def test_runs_are_reproducible_and_start_from_the_same_weights(digits_data):
    setup = lab.setup_for("digits", epochs=1, hidden=(16,))
    a = lab.train_run(digits_data, setup, "adam", 1e-3, 1, evaluate=False)
    b = lab.train_run(digits_data, setup, "adam", 1e-3, 1, evaluate=False)
    c = lab.train_run(digits_data, setup, "nesterov", 1e-3, 1, evaluate=False)
    np.testing.assert_array_equal(a.costs, b.costs)
    # same initial weights and first batch: the first cost (before any update) is shared
    assert c.costs[0] == a.costs[0] and not np.array_equal(c.costs[1:], a.costs[1:])


def test_a_diverging_learning_rate_scores_inf_and_is_not_chosen(digits_data):
    setup = lab.setup_for("digits", tune_epochs=1, hidden=(16,), optimizers=("sgd",),
                          grids={"sgd": (0.1, 1e30)})
    best, results = lab.tune(digits_data, setup, "sgd")
    assert best == 0.1
    assert dict(results)[1e30] == math.inf and math.isfinite(dict(results)[0.1])


def test_smooth_is_a_debiased_moving_average():
    np.testing.assert_allclose(lab.smooth([3.0, 3.0, 3.0], 10), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(lab.smooth([1.0, 5.0], 1), [1.0, 5.0])
    s = lab.smooth(np.r_[np.ones(50), np.zeros(50)], 5)
    assert s[49] == pytest.approx(1.0) and 0 < s[55] < s[51] < 1


@pytest.mark.parametrize("overrides, match", [
    (dict(optimizers=("adamax",)), "unknown optimizer .adamax."),
    (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
    (dict(tune_epochs=1.5), "tune_epochs"),
    (dict(dropout=1.0), "dropout must be in"),
    (dict(optimizers=("adam",), grids={"adam": (-1.0,)}), "positive learning rates"),
    (dict(train_examples=10), "train_examples=10"),
])
def test_bad_setups_are_rejected_naming_the_value(overrides, match):
    with pytest.raises(ValueError, match=match):
        lab.setup_for("digits", **overrides)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of mnist, digits"):
        lab.setup_for("cifar10")


def test_cli_compare_net_quick_writes_a_run_folder(tmp_path, capsys):
    from gradfit.cli import main
    out = tmp_path / "run"
    rc = main(["compare", "net", "--quick", "--epochs", "1", "--tune-epochs", "1",
               "--optimizers", "adam,adagrad", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {r["optimizer"] for r in rows} == {"adam", "adagrad"}
    assert f"Run folder: {out}" in capsys.readouterr().out


def test_cli_compare_needs_a_target(capsys):
    from gradfit.cli import main
    assert main(["compare"]) == 2
    assert "gradfit compare toy" in capsys.readouterr().err


def test_cli_compare_toy_dispatches_to_the_toy_report(tmp_path):
    from gradfit.cli import main
    out = tmp_path / "toy"
    rc = main(["compare", "toy", "--problem", "rosenbrock", "--steps", "30",
               "--optimizers", "sgd,adam", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {r["optimizer"] for r in rows} == {"sgd", "adam"}
    assert all(int(r["steps"]) == 30 for r in rows)
    assert (out / "contour.png").stat().st_size > 0 and (out / "summary.md").stat().st_size > 0
    assert main(["compare", "toy", "--steps", "0", "--out", str(out)]) == 2


def test_a_run_folder_reads_back_and_redraws_identically(tiny_run, tmp_path):
    out, setup, _ = tiny_run
    runs, setup2 = lab.load_runs(out)
    assert setup2 == setup and list(runs) == list(setup.optimizers)
    lab.write_reports(runs, setup2, tmp_path)
    for name in ("tuning.csv", "curves.csv", "setup.json", "summary.md"):
        assert (tmp_path / name).read_text() == (out / name).read_text(), name
    # final_cost is recomputed from curves.csv, written to 9 significant digits
    before, after = (list(csv.DictReader(open(d / "results.csv"))) for d in (out, tmp_path))
    for a, b in zip(before, after):
        assert a.keys() == b.keys() and a["optimizer"] == b["optimizer"]
        for k in a:
            try:
                assert float(b[k]) == pytest.approx(float(a[k]), rel=1e-7), k
            except ValueError:
                assert b[k] == a[k], k
