"""`gradfit noise-scale` and `gradfit batch-sweep` on tiny digits runs, their argument checks,
and the GradientNoiseScale routes fed by the loop's ``model.grad_norms`` (one process, a fake
two-rank comm, and a real ``mpiexec -n 2``)."""
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradfit.callbacks import GradientNoiseScale
from gradfit.cli import main
from gradfit.noise_scale import NoiseScaleEstimator, exact_estimates, two_batch_estimates
from gradfit.train.state import TrainState

ROOT = Path(__file__).resolve().parents[1]


def is_pow2(b):
    return isinstance(b, int) and b > 0 and b & (b - 1) == 0


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def png_ok(path):
    from PIL import Image
    with Image.open(path) as im:
        return im.format == "PNG" and len(np.unique(np.asarray(im.convert("L")))) > 10


# --------------------------------------------------------------------------- the commands
def test_noise_scale_command_writes_files_and_recommends_a_power_of_two(tmp_path, capsys):
    out = tmp_path / "ns"
    rc = main(["noise-scale", "--hidden", "16", "--batch-size", "64", "--epochs", "2",
               "--min-steps", "5", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["route"] == "per_example"
    rec = res["recommended_batch_size"]
    assert is_pow2(rec) and 1 <= rec <= res["train_examples"]
    assert f"Recommended batch size: {rec}" in text
    # the recommendation is the power of two nearest (in log2) the late median
    assert abs(math.log2(rec) - math.log2(res["b_simple_late_median"])) <= 0.5 + 1e-9
    rows = read_csv(out / "b_simple.csv")
    steps_per_epoch = res["train_examples"] // 64
    assert [int(r["step"]) for r in rows] == list(range(1, 2 * steps_per_epoch + 1))   # every=1
    assert all(r["b_simple"] == "" for r in rows[:4]) and float(rows[-1]["b_simple"]) > 0
    assert len(read_csv(out / "history.csv")) == 2
    assert png_ok(out / "b_simple.png")


def test_batch_sweep_fits_and_reports_an_unreached_batch_size(tmp_path, capsys):
    out = tmp_path / "bs"
    # 1024 of ~1290 examples is 1 step per epoch: 3 steps cannot reach the target
    rc = main(["batch-sweep", "--hidden", "16", "--batch-sizes", "16,64,1024", "--target-loss", "0.6",
               "--lrs", "0.3,1", "--max-epochs", "3", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["not_reached"] == [1024] and "not reached within the budget" in text
    rows = read_csv(out / "sweep.csv")
    assert [int(r["batch_size"]) for r in rows] == [16, 64, 1024]
    for r in rows[:2]:
        assert r["outcome"] == "reached" and int(r["examples"]) == int(r["batch_size"]) * int(r["steps"])
    assert rows[2]["steps"] == "" and rows[2]["outcome"] == "not reached"
    assert int(rows[0]["steps"]) > int(rows[1]["steps"])   # a bigger batch needs fewer steps
    fit = res["fit"]
    assert fit["B_crit"] == pytest.approx(fit["E_min"] / fit["S_min"])
    assert is_pow2(fit["recommended_batch_size"]) and 16 <= fit["recommended_batch_size"] <= 1024
    runs = read_csv(out / "runs.csv")
    assert {r["outcome"] for r in runs} <= {"reached", "pruned", "budget", "diverged"}
    assert len(runs) == 6     # every batch size tried with both learning rates
    assert png_ok(out / "frontier.png")


@pytest.mark.parametrize("argv, message", [
    (["batch-sweep", "--batch-sizes", "0,16"], "must be positive, got [0]"),
    (["batch-sweep", "--batch-sizes", "16,16"], "must be distinct"),
    (["batch-sweep", "--batch-sizes", "16"], "at least 2 batch sizes"),
    (["batch-sweep", "--batch-sizes", "8,a"], "comma-separated integers"),
    (["batch-sweep", "--batch-sizes", "8,4096"], "[4096] are larger than the"),
    (["batch-sweep", "--min-exp", "5", "--max-exp", "3"], "B_small < B_big"),
    (["batch-sweep", "--target-accuracy", "1.5"], "argument --target-accuracy: must be a finite number > 0.0 and < 1.0, got 1.5"),
    (["batch-sweep", "--target-loss", "-1"], "argument --target-loss: must be a finite number > 0.0, got -1.0"),
    (["batch-sweep", "--lrs", "0.1,-1"], "positive learning rates"),
    (["batch-sweep", "--max-epochs", "0"], "argument --max-epochs: must be an integer >= 1, got 0"),
    (["noise-scale", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
    (["noise-scale", "--batch-size", "99999"], "larger than the"),
    (["noise-scale", "--every", "0"], "argument --every: must be an integer >= 1"),
    (["noise-scale", "--lr", "0"], "argument --lr/--learning-rate: must be a finite number > 0.0, got 0.0"),
])
def test_bad_arguments_are_rejected(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_target_options_are_exclusive(capsys):
    assert main(["batch-sweep", "--target-loss", "0.1", "--target-accuracy", "0.9"]) == 2
    assert "not allowed with" in capsys.readouterr().err


# ------------------------------------------------------------ the callback's two routes
class FakeModel:
    """What the callback reads: comm, train_state.grad_norms (a new dict per step, as
    train_step sets it), layer_io."""

    def __init__(self, comm=None):
        self.comm = comm
        self.layers = []
        self.train_state = TrainState()


class TwoRankComm:
    """Rank 0 of two: allreduce_array_ adds the other rank's vector, given beforehand."""

    size, rank = 2, 0

    def __init__(self):
        self.other, self.calls = None, 0

    def allreduce_array_(self, buf):
        self.calls += 1
        buf += self.other
        return buf


def test_two_batch_route_averages_ranks_and_uses_the_harmonic_batch():
    comm = TwoRankComm()
    model = FakeModel(comm)
    cb = GradientNoiseScale(ema=0.5, min_steps=1, every=1)
    cb.set_model(model)
    ref = NoiseScaleEstimator(1, 2, ema=0.5, min_steps=1)
    rng = np.random.default_rng(0)
    for step in range(5):
        b0, b1 = 24, 40                 # uneven slices (drop_remainder=False's last batch)
        l0, l1, glob = rng.uniform(2.0, 3.0), rng.uniform(1.5, 2.5), rng.uniform(1.5, 2.0)
        cb.on_train_batch_begin(step)
        model.train_state.grad_norms = {"local_sq": l0, "global_sq": glob, "b_local": b0, "b_global": b0 + b1}
        comm.other = np.array([l1, 1.0 / b1, 1.0])
        cb.on_train_batch_end(step)
        # E[mean_r |G_r|^2] = |G|^2 + tr(Sigma) * mean_r(1/b_r): B_small = harmonic mean
        ref.update_estimates(*two_batch_estimates((l0 + l1) / 2, glob, 2 / (1 / b0 + 1 / b1), b0 + b1))
    assert cb.route == "two_batch" and comm.calls == 5
    assert cb.estimator.g_sq == pytest.approx(ref.g_sq, rel=1e-12)
    assert ref.b_simple is not None and ref.b_simple > 0      # a number, not "not available"
    assert cb.b_simple == pytest.approx(ref.b_simple, rel=1e-12)


def test_two_batch_route_recovers_known_noise_statistics():
    # G_r = G + noise of covariance Sigma/b_r: the estimates converge to |G|^2 and tr(Sigma)
    rng = np.random.default_rng(1)
    d, ranks, b_local = 50, 4, 8
    g_true = rng.normal(size=d) * 0.3
    sigma_diag = rng.uniform(0.5, 1.5, size=d)
    cb = GradientNoiseScale(ema=0.999, min_steps=1, every=1)
    totals = []
    for step in range(4000):
        local = [g_true + (rng.normal(size=(b_local, d)) * np.sqrt(sigma_diag)).mean(0)
                 for _ in range(ranks)]
        totals.append(local)
    # feed rank 0's view; the fake comm sums the other ranks' [|G_r|^2, 1/b_r, 1]
    comm = TwoRankComm()
    comm.size = ranks
    model = FakeModel(comm)
    cb.set_model(model)
    for step, local in enumerate(totals):
        sq = [float(g @ g) for g in local]
        glob = np.mean(local, axis=0)
        cb.on_train_batch_begin(step)
        model.train_state.grad_norms = {"local_sq": sq[0], "global_sq": float(glob @ glob),
                            "b_local": b_local, "b_global": ranks * b_local}
        comm.other = np.array([sum(sq[1:]), (ranks - 1) / b_local, ranks - 1.0])
        cb.on_train_batch_end(step)
    assert cb.estimator.trace_sigma == pytest.approx(sigma_diag.sum(), rel=0.05)
    assert cb.estimator.g_sq == pytest.approx(g_true @ g_true, rel=0.1)


def test_two_batch_method_in_one_process_is_an_error():
    model = FakeModel()
    cb = GradientNoiseScale(method="two_batch", every=1)
    cb.set_model(model)
    cb.on_train_batch_begin(0)
    model.train_state.grad_norms = {"local_sq": 1.0, "global_sq": 1.0, "b_local": 8, "b_global": 8}
    with pytest.raises(ValueError, match=r"needs data-parallel training.*\(8, 8\)"):
        cb.on_train_batch_end(0)
    with pytest.raises(ValueError, match="method must be one of"):
        GradientNoiseScale(method="fast")


def _tiny_model():
    import gradfit
    from gradfit import Dense, Input, Sequential
    gradfit.set_random_seed(3)
    model = Sequential([Input(shape=(6,)), Dense(8, activation="tanh"),
                        Dense(3, activation="softmax")], dtype="float64")
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(96, 6))
    y = np.argmax(x[:, :3], axis=1)
    return model, x, y


def test_per_example_route_uses_the_loops_norm_and_matches_brute_force(monkeypatch):
    import gradfit.callbacks.gradient_noise_scale as gns

    def no_recompute(*a, **k):
        raise AssertionError("|G_B|^2 recomputed although the loop handed it over")

    monkeypatch.setattr(gns, "mean_grad_sq_norm", no_recompute)
    model, x, y = _tiny_model()
    seen = []

    class Spy(GradientNoiseScale):
        def on_train_batch_end(self, batch, logs=None):
            ios = self.model.layer_io()    # this batch's (x, dz): dz of the mean, denom 32
            gb = sum(float(np.sum((a.T @ dz) ** 2) + np.sum(dz.sum(0) ** 2)) for a, dz in ios)
            seen.append((self.model.train_state.grad_norms["global_sq"], gb))
            super().on_train_batch_end(batch, logs)

    cb = Spy(ema=0.0, min_steps=1, every=1)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False, callbacks=[cb])
    # the loop's |G_B|^2 (taken before the update) is the mean gradient's norm from (x, dz)
    for loop_sq, from_io in seen:
        assert loop_sq == pytest.approx(from_io, rel=1e-10)
    assert cb.route == "per_example" and cb.history["step"] == [1, 2, 3]
    # the last batch by brute force: per-example gradients [vec(x_i dz_i^T), dz_i] per layer
    per_ex = np.concatenate([np.concatenate([np.einsum("bi,bj->bij", a, dz * 32).reshape(32, -1),
                                             dz * 32], axis=1) for a, dz in model.layer_io()], axis=1)
    assert per_ex.shape[1] == model.params.size
    mean = per_ex.mean(0)
    e = exact_estimates(np.sum(per_ex ** 2, axis=1), float(mean @ mean))
    assert cb.estimator.g_sq == pytest.approx(e.g_sq, rel=1e-9)     # ema=0: the last batch alone
    assert cb.estimator.trace_sigma == pytest.approx(e.trace_sigma, rel=1e-9)


def test_stale_grad_norms_are_not_reused():
    # driven by hand (no fit): the dict left from an earlier fit must not be taken for this step's
    model, x, y = _tiny_model()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[GradientNoiseScale(every=1)])
    stale = model.train_state.grad_norms
    model.compute_gradients(x[:16], y[:16])
    cb = GradientNoiseScale(ema=0.0, min_steps=1, every=1)
    cb.set_model(model)
    cb.on_train_batch_begin(0)
    cb.on_train_batch_end(0)
    assert model.train_state.grad_norms is stale
    g = np.array(model.grads)
    # recomputed from (x, dz): |G_B|^2 of THIS batch
    tr = cb.estimator.trace_sigma
    assert cb.estimator.g_sq + tr / 16 == pytest.approx(float(g @ g), rel=1e-10)


# ------------------------------------------------------------------ a real mpiexec -n 2
MPI_SCRIPT = r"""
import json, sys
import numpy as np
import gradfit
from gradfit import Dense, Input, Sequential
from gradfit.callbacks import GradientNoiseScale
gradfit.set_random_seed(0)
ds = gradfit.datasets.load("digits")
model = Sequential([Input(shape=(64,)), Dense(16, activation="relu"), Dense(10, activation="softmax")])
model.compile("sgd", "sparse_categorical_crossentropy")
cb = GradientNoiseScale(every=1, ema=0.95)
model.fit(ds.x_train, ds.y_train, batch_size=64, epochs=4, verbose=0, callbacks=[cb])
with open(sys.argv[1] + f"/rank{model.comm.rank}.json", "w") as f:
    json.dump({"route": cb.route, "b_simple": cb.b_simple, "size": model.comm.size,
               "history": cb.history["b_simple"]}, f)
"""


def test_mpiexec_two_ranks_use_the_free_two_batch_estimate(tmp_path):
    pytest.importorskip("mpi4py")
    from gradfit.parallel import launch
    if launch.find_mpiexec(required=False) is None:
        pytest.skip("mpiexec not found")
    script = tmp_path / "ns.py"
    script.write_text(MPI_SCRIPT)
    drop = ("PMI_RANK", "PMI_SIZE", "PMI_FD", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
            "PMIX_RANK", "MPI_LOCALNRANKS", "GRADFIT_MPI")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = launch.thread_env(1, env)
    results = {}
    for n in (0, 2):
        out = tmp_path / f"n{n}"
        out.mkdir()
        args = [sys.executable, str(script), str(out)]
        cmd = args if n == 0 else launch.mpiexec_command(n, args)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results[n] = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    (one,), (r0, r1) = results[0], results[2]
    assert one["route"] == "per_example" and r0["route"] == r1["route"] == "two_batch"
    assert r0["size"] == 2 and r0["history"] == r1["history"]   # every rank holds the same value
    # same training (data parallel = one process), different estimators of the same quantity:
    # the same order of magnitude (the two-batch one is much noisier: only 2 "samples")
    assert r0["b_simple"] > 0 and one["b_simple"] > 0
    assert 0.2 < r0["b_simple"] / one["b_simple"] < 5
