"""benchmarks/time_to_target.py (issue 18): the schedules each framework uses follow the recipe
(checked against torch's and Keras's own schedulers), the warm-up leaves the timed run where an
unwarmed one starts, the clock stops at the first evaluation at the target, the AlgoPerf split
and normalization, and the driver end to end (offline: the digits workload)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ttt import clock, driver, recipes, run_gradfit, workloads  # noqa: E402
from ttt.recipes import Recipe  # noqa: E402

import search_recipe  # noqa: E402

SCRIPT = ROOT / "benchmarks" / "time_to_target.py"


# -- the best recipe as one `gradfit train` command --------------------------------------------
@pytest.mark.parametrize("overrides", [
    {"hidden": [256, 256], "learning_rate": 4e-3, "decay_epochs": 3, "batch_size": 64},
    {"hidden": [512], "optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True,
     "schedule": "cosine", "batch_size": 128},
    {"optimizer": "adamw", "weight_decay": 1e-4, "schedule": "constant", "batch_size": 1024,
     "lr_scaling": "rule"}])
def test_a_recipe_as_a_train_command_trains_what_the_recipe_says(overrides):
    from gradfit.cli import build_parser
    from gradfit.commands import optimizer_flags, train_checks
    recipe = recipes.get("same", overrides)
    command = recipe.train_command(epochs=3)
    argv = command.split()
    assert argv[:4] == ["gradfit", "train", "--data", "mnist"]
    args = build_parser().parse_args(argv[1:])
    train_checks.check_combinations(args)
    opt = optimizer_flags.build(args)
    train_checks.apply_schedule(args, opt, 60_000)
    steps = 60_000 // recipe.batch_size
    factor = recipe.batch_factor(recipe.batch_size)
    for i in (0, 1, steps, 2 * steps + 5, 10 * steps):
        assert opt.current_learning_rate(i) == pytest.approx(recipe.lr_at(i, steps) * factor,
                                                             rel=1e-9)
    assert type(opt).__name__.lower() == recipe.optimizer
    assert (args.hidden, args.init, args.epochs, args.val_fraction, args.patience) == \
        (",".join(map(str, recipe.hidden)), recipe.init, 3, 0.0, 0)
    if recipe.optimizer == "sgd":
        assert (opt.momentum, opt.nesterov) == (0.9, True)
    else:
        assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.9, 0.999, 1e-8)
    assert recipes.get("same", {"batch_size": "auto"}).train_command(3) is None


# -- the recipe's learning rate, in every framework ----------------------------------------------
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedules_follow_the_recipe_in_gradfit_torch_and_keras(schedule):
    import keras
    import torch
    from ttt import run_keras, run_torch
    recipe = Recipe(schedule=schedule, learning_rate=2e-3, decay_epochs=2, end_fraction=0.02)
    steps_per_epoch = 7                                       # decay over 14 steps, then held
    expected = [recipe.lr_at(i, steps_per_epoch) for i in range(20)]
    assert expected[0] == 2e-3 and expected[-1] == pytest.approx(4e-5)

    gf = run_gradfit.learning_rate(recipe, steps_per_epoch)
    assert [gf(i) for i in range(20)] == pytest.approx(expected, rel=1e-12)

    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=recipe.learning_rate)
    sched = run_torch.make_scheduler(recipe, opt, steps_per_epoch)
    got = []
    for _ in range(20):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert got == pytest.approx(expected, rel=1e-6)

    schedule = run_keras.optimizer(recipe, steps_per_epoch)._learning_rate   # the schedule object
    got = [float(keras.ops.convert_to_numpy(schedule(i))) for i in range(20)]
    assert got == pytest.approx(expected, rel=1e-5)


def test_recipes_refuse_bad_fields_and_say_how_to_get_the_best_one(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Recipe(optimizer="lbfgs")
    with pytest.raises(SystemExit, match="unknown fields"):
        recipes.get("same", {"widths": [10]})
    monkeypatch.setattr(recipes, "BEST_FILE", tmp_path / "absent.json")
    with pytest.raises(SystemExit, match="search_recipe.py"):
        recipes.get("best")
    assert recipes.get("same", {"batch_size": 128}).batch_size == 128


# -- the clock ------------------------------------------------------------------------------------
def test_the_clock_stops_at_the_first_evaluation_at_the_target():
    wl = workloads.Workload("t", np.zeros((4, 2)), np.zeros(4), np.zeros((2, 2)), np.zeros(2),
                            "test", 0.9)
    tc = clock.TargetClock(wl, 0.9, max_epochs=10)
    tc.start()
    stops = [tc.epoch_end(e, lambda a=a: a) for e, a in enumerate([0.5, 0.89, 0.9, 0.95])]
    assert stops == [False, False, True, True]
    r = tc.result()
    assert r["reached"] and r["seconds"] == pytest.approx(r["evals"][2]["seconds"], abs=1e-3)
    assert r["accuracy"] == [0.5, 0.89, 0.9, 0.95]
    strict = workloads.Workload("s", *([np.zeros(1)] * 4), "validation", 0.97, strict=True)
    assert not strict.reached(0.97, 0.97) and strict.reached(0.9701, 0.97)


# -- the runners: the warm-up does not move the starting point -------------------------------------
def _digits_first_epoch(runner, **kw):
    wl = workloads.load("digits")
    recipe = Recipe(hidden=(32,), batch_size=64, max_epochs=1)
    tc = clock.TargetClock(wl, 1.01, recipe.max_epochs)     # never reached: one evaluation
    info = runner.run(wl, recipe, 3, 1, tc, **kw)
    return wl, recipe, tc.result(), info


def test_gradfit_run_starts_where_an_unwarmed_fit_starts():
    import gradfit
    wl, recipe, res, info = _digits_first_epoch(run_gradfit)
    assert res["epochs"] == 1 and not res["reached"] and info["steps_per_epoch"] == len(wl.x_train) // 64
    model = run_gradfit.build(recipe, wl.x_train.shape[1], 10, 3)
    model.compile(optimizer=run_gradfit.optimizer(recipe, info["steps_per_epoch"]),
                  loss=gradfit.losses.SparseCategoricalCrossentropy(from_logits=True))
    gradfit.set_random_seed(3)
    model.fit(wl.x_train, wl.y_train, batch_size=64, epochs=1, verbose=0)
    assert res["accuracy"][0] == clock.accuracy_of(model.predict(wl.x_eval), wl.y_eval)


def test_torch_run_starts_where_an_unwarmed_loop_starts():
    import torch
    from ttt import run_torch
    wl, recipe, res, info = _digits_first_epoch(run_torch, impl="foreach")
    assert info["impl"]["kernel"] == "foreach"
    x, y = torch.from_numpy(wl.x_train), torch.from_numpy(wl.y_train)
    model = run_torch.build(recipe, x.shape[1], 10, 3)
    opt = run_torch.make_optimizer(recipe, model.parameters(), "foreach")
    sched = run_torch.make_scheduler(recipe, opt, info["steps_per_epoch"])
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    for k in range(info["steps_per_epoch"]):
        idx = perm[k * 64:(k + 1) * 64]
        run_torch.train_step(model, opt, sched, x[idx], y[idx])
    with torch.no_grad():
        acc = (model(torch.from_numpy(wl.x_eval)).argmax(1).numpy() == wl.y_eval).mean()
    assert res["accuracy"][0] == pytest.approx(acc, abs=1e-6)   # float32 mean; 1 example = 0.0028


def test_keras_warmed_model_trains_like_an_unwarmed_one():
    import keras
    from ttt import run_keras
    wl = workloads.load("digits")
    recipe = Recipe(hidden=(32,), batch_size=64, max_epochs=1)
    steps = -(-len(wl.x_train) // 64)

    def first_epoch(model):
        # shuffle=False: Keras's torch data loader draws its shuffle from torch's RNG, which a
        # model's first fit consumes differently (see run_keras's docstring)
        model.fit(wl.x_train, wl.y_train, batch_size=64, epochs=1, shuffle=False, verbose=0)
        return model.get_weights()

    warmed = first_epoch(run_keras.warmed_model(wl, recipe, 3, steps))
    keras.utils.set_random_seed(3)
    model = run_keras.build(recipe, wl.x_train.shape[1], 10)
    model.compile(optimizer=run_keras.optimizer(recipe, steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for a, b in zip(warmed, first_epoch(model)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    wl2, _, res, info = _digits_first_epoch(run_keras)
    assert info["steps_per_epoch"] == steps and res["epochs"] == 1 and info["impl"]["backend"] == "torch"


# -- AlgoPerf's split and normalization --------------------------------------------------------
def test_algoperf_split_and_normalization_follow_its_code(monkeypatch):
    from gradfit.datasets.base import Dataset
    raw = np.random.default_rng(0).integers(0, 256, size=(60000, 3), dtype=np.uint8)
    labels = np.arange(60000) % 10
    fake = Dataset(raw, labels, raw[:100], labels[:100], 10, "mnist", None)
    monkeypatch.setattr(workloads.datasets, "mnist", lambda **kw: fake)
    wl = workloads.load("algoperf-mnist")
    assert len(wl.x_train) == 50000 and len(wl.x_eval) == 10000 and wl.strict
    np.testing.assert_array_equal(wl.y_eval, labels[50000:])       # train[50000:] validates
    np.testing.assert_allclose(wl.x_train[7], (raw[7].astype(np.float32) - 0.1307) / 0.3081, rtol=1e-6)
    scaled = workloads.load("algoperf-mnist-01")
    np.testing.assert_allclose(scaled.x_eval[0], (raw[50000] / 255.0 - 0.1307) / 0.3081, rtol=1e-5)


def test_mnist_workload_without_the_files_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADFIT_DATA", str(tmp_path))
    with pytest.raises(SystemExit, match="GRADFIT_DATA"):
        workloads.load("mnist")


# -- the driver ----------------------------------------------------------------------------------
def test_summary_medians_and_paired_ratios():
    def rec(fw, seed, s):
        return {"framework": fw, "recipe": {"name": "same"}, "seed": seed, "reached": s is not None,
                "seconds": s, "epochs": 3}
    recs = [rec("gradfit", 0, 2.0), rec("gradfit", 1, 4.0), rec("gradfit", 2, 3.0),
            rec("torch", 0, 3.0), rec("torch", 1, 4.0), rec("torch", 2, 6.0)]
    s = driver.summarize(recs, [("gradfit", "same"), ("torch", "same")], [0, 1, 2])
    assert s["contenders"]["gradfit:same"]["median_s"] == 3.0
    r = s["ratios"]["torch:same / gradfit:same"]
    assert r["of_medians"] == pytest.approx(4.0 / 3.0)
    assert r["paired_median"] == pytest.approx(1.5) and r["paired_range"] == [1.0, 2.0]
    assert "torch:same / gradfit:same" in driver.summary_text(s)
    # seconds per epoch: the spans between evaluations, over every run's epochs
    recs[0]["evals"] = [{"seconds": 0.5}, {"seconds": 1.5}, {"seconds": 2.0}]   # 0.5, 1.0, 0.5
    recs[1]["evals"] = [{"seconds": 2.0}]                                          # 2.0
    s = driver.summarize(recs, [("gradfit", "same"), ("torch", "same")], [0, 1, 2])
    assert s["contenders"]["gradfit:same"]["median_s_per_epoch"] == 0.75
    assert s["contenders"]["torch:same"]["median_s_per_epoch"] is None
    assert driver.summary_text(s).splitlines()[1].endswith("0.750")
    # the accuracy after each epoch, over the runs that got there
    recs[0]["accuracy"], recs[1]["accuracy"], recs[2]["accuracy"] = [0.9, 0.96], [0.94], [0.92, 0.98]
    s = driver.summarize(recs, [("gradfit", "same"), ("torch", "same")], [0, 1, 2])
    acc = s["contenders"]["gradfit:same"]["accuracy_after_epoch"]
    assert acc[1] == pytest.approx([0.92, 0.02, 3]) and acc[2] == pytest.approx([0.97, 2 ** 0.5 / 100, 2])
    assert s["contenders"]["torch:same"]["accuracy_after_epoch"] == {}
    text = driver.summary_text(s)
    assert "\n  gradfit:same        1: 0.9200 (0.0200, 3)   2: 0.9700 (0.0141, 2)\n" in text
    assert "\n  torch:same          -\n" in text


@pytest.mark.slow
def test_driver_runs_interleaved_and_resumes(tmp_path):
    out = tmp_path / "runs.jsonl"
    cmd = [sys.executable, str(SCRIPT), "--driver", "--workload", "digits", "--threads", "1",
           "--contenders", "gradfit,torch", "--seeds", "0,1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    lines = [json.loads(ln) for ln in out.read_text().splitlines()]
    # round 0: gradfit then torch; round 1 rotated: torch then gradfit
    assert [(r["framework"], r["seed"]) for r in lines] == [
        ("gradfit", 0), ("torch", 0), ("torch", 1), ("gradfit", 1)]
    for r in lines:
        assert r["reached"] and r["seconds"] > 0 and r["target"] == 0.9
        assert r["accuracy"][-1] >= 0.9 and all(a < 0.9 for a in r["accuracy"][:-1])
        assert r["environment"]["threads"] == 1 and r["environment"]["blas"]
    assert "torch:same / gradfit:same" in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.stdout.count("skipped") == 4 and len(out.read_text().splitlines()) == 4


# -- the recipe search ---------------------------------------------------------------------------
SEARCH = ROOT / "benchmarks" / "search_recipe.py"


def test_search_candidates_are_drawn_reproducibly_and_include_the_same_recipe():
    def ids(seed):
        out = subprocess.run([sys.executable, str(SEARCH), "--dry-run", "--candidates", "6",
                              "--search-seed", str(seed)], capture_output=True, text=True, check=True)
        return [ln.split()[0] for ln in out.stdout.splitlines()]
    first = ids(0)
    assert first == ids(0) and first != ids(1)
    assert len(first) == 7 and first[0] == ids(1)[0]          # {} = "same" comes first


@pytest.mark.slow
def test_search_writes_the_best_recipe_and_resumes(tmp_path):
    out, best = tmp_path / "search.jsonl", tmp_path / "best.json"
    cmd = [sys.executable, str(SEARCH), "--workload", "digits", "--candidates", "2", "--top", "2",
           "--refine", "1",
           "--seeds", "0,1", "--threads", "1", "--max-epochs", "6", "--out", str(out),
           "--best-out", str(best)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    runs = [json.loads(ln) for ln in out.read_text().splitlines()]
    chosen = json.loads(best.read_text())
    winners = [r for r in runs if r["id"] == chosen["runs"][0]["id"]]
    assert sorted(r["seed"] for r in winners) == [0, 1] and all(r["reached"] for r in winners)
    ranked = [r for r in runs if r["seed"] == 1 and r["reached"]]   # seed 1: the top ones only
    medians = {r["id"]: (r["seconds"] + next(q["seconds"] for q in runs if q["id"] == r["id"]
                                              and q["seed"] == 0)) / 2 for r in ranked}
    assert chosen["median_seconds"] == pytest.approx(min(medians.values()))
    assert recipes.from_dict(chosen["recipe"]).name == "best"
    screened = {r["id"]: r["overrides"] for r in runs if r["seed"] == 0}
    drawn = subprocess.run(cmd[:2] + ["--dry-run", "--candidates", "2"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    drawn = [ln.split()[0] for ln in drawn]
    extra = [c for i, c in screened.items() if i not in drawn]       # the refined one
    assert len(extra) == 1 and any(extra[0] in search_recipe.neighbours(c)
                                   for c in screened.values())
    assert chosen["command"].startswith("gradfit train --data digits --hidden ")
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and len(out.read_text().splitlines()) == len(runs)


# -- batch_size="auto" in the benchmark (issue 18 phase 2) ----------------------------------------
def test_auto_and_the_scaling_rule_are_recipe_fields_other_frameworks_refuse():
    auto = recipes.get("same", {"batch_size": "auto", "lr_scaling": "rule"})
    assert auto.gradfit_only and not recipes.get("same").gradfit_only
    with pytest.raises(ValueError, match="'auto'"):
        Recipe(batch_size="big")
    with pytest.raises(ValueError, match="auto_min"):
        Recipe(auto_min=64, auto_max=32)
    rule = Recipe(lr_scaling="rule", lr_batch=256)
    assert rule.batch_factor(64) == pytest.approx(0.5)                      # Adam: sqrt(64/256)
    assert Recipe(optimizer="sgd", lr_scaling="rule").batch_factor(64) == pytest.approx(0.25)
    assert Recipe().batch_factor(64) == 1.0
    # the decay over examples is the per-step decay where a step is 1/steps_per_epoch epoch
    r = Recipe(schedule="cosine", decay_epochs=2)
    for step in (0, 7, 50, 200, 500):
        assert r.lr_at_epochs(step / 100) == pytest.approx(r.lr_at(step, 100))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--framework", "torch", "--workload",
                           "digits", "--recipe-json", '{"batch_size": "auto"}'],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode != 0 and "gradfit's" in proc.stderr and "fixed batch_size" in proc.stderr


def test_gradfit_auto_run_decays_over_examples_and_records_the_trajectory():
    """An "auto" run: the base rate before every step is the recipe's decay at the epochs of
    data seen (whatever the batch), and the record holds the trajectory from the first batch."""
    import gradfit
    wl = workloads.load("digits")
    recipe = Recipe(hidden=(32,), batch_size="auto", auto_min=16, max_epochs=3, decay_epochs=2,
                    lr_scaling="rule")
    rates = []

    class Spy(gradfit.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            st = self.model.train_state
            rates.append((st.epoch + (st.seen - logs["batch_size"]) / len(wl.x_train),
                          self.model.optimizer.learning_rate))
    real_fit = gradfit.Sequential.fit

    def fit(self, *a, callbacks=(), **kw):
        return real_fit(self, *a, callbacks=list(callbacks) + [Spy()], **kw)
    tc = clock.TargetClock(wl, 1.01, recipe.max_epochs)
    mp = pytest.MonkeyPatch()
    mp.setattr(gradfit.Sequential, "fit", fit)
    try:
        info = run_gradfit.run(wl, recipe, 3, 1, tc)
    finally:
        mp.undo()
    auto = info["auto"]
    assert info["steps_per_epoch"] is None and auto["first_batch"] == 16 and auto["lr_rule"] == "adam"
    assert auto["trajectory"]["batch_size"][-1] > 16 and len(auto["batch_size_per_epoch"]) == 3
    assert all(lr == pytest.approx(recipe.lr_at_epochs(e)) for e, lr in rates)
    assert rates[-1][1] == pytest.approx(recipe.learning_rate * recipe.end_fraction)
    json.dumps(info, allow_nan=False)          # the record is strict JSON (NaN written as null)


def test_the_auto_batch_experiment_runs_every_contender_resumes_and_plots(tmp_path):
    exp = ROOT / "benchmarks" / "auto_batch.py"
    out = tmp_path / "ab.jsonl"
    cmd = [sys.executable, str(exp), "--workload", "digits", "--target", "0.5", "--seeds", "0",
           "--threads", "1", "--batch-sizes", "32,128", "--auto-min", "16",
           "--recipe-json", '{"hidden": [16], "max_epochs": 3, "learning_rate": 0.05}', "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    runs = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert sorted(r["recipe"]["name"] for r in runs) == ["auto", "b128", "b32"]
    assert all(r["recipe"]["lr_scaling"] == "rule" for r in runs)
    b32 = next(r for r in runs if r["recipe"]["name"] == "b32")
    assert b32["recipe"]["batch_size"] == 32 and "auto" not in b32
    assert "gradfit:b32 / gradfit:auto" in first.stdout and (tmp_path / "ab.png").stat().st_size > 0
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and len(out.read_text().splitlines()) == 3
    assert "seed 0" not in again.stdout, "finished runs are not run again"
