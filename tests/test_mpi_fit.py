"""Data-parallel `fit` under a real ``mpiexec -n 2`` / ``-n 3`` against one process.

The lecture's "pattern separability" made a test: the loss of a global batch is a sum over its
examples, so N ranks each taking 1/N of every global batch, summing their gradients with one
Allreduce and taking the same step must train the same model as one process.

Every run is a subprocess with a timeout (a hang fails the test; it never hangs CI). The scripts
in tests/mpi_scripts/fit_*.py write what each rank ended with to rank-specific files in a tmp dir
(the scripts do, never the library), and these tests compare them.

Tolerances:
* float64: 1e-10 relative (the issue's bound). Only the summation order differs (2 or 3 partial
  sums of the batch, then Allreduce), a few ulps (1e-16) per step; measured ~3e-16 after 50 steps.
* float32: ``STEPS * eps32`` relative to max|w| (50 * 1.19e-7 = 6e-6): the same reordering gives
  at most about one float32 ulp of relative change per step, and over these few steps the
  updates do not amplify it, so at worst the ulps add up linearly (measured: 1.2e-7, one ulp).

Checked by mutation (monkeypatching the library under ``mpiexec -n 2``): dropout masks drawn per
rank instead of for the global batch move every configuration by 4e-2..0.7; a loss divided by
the local instead of the global batch moves Nesterov SGD by 0.7 but Adam, nearly invariant to
the gradient's scale, by only 2e-6 - caught by the float64 bound and by the doubled loss in the
history, not by the float32 one; hence float64 SGD and the history comparison below.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gradfit.datasets import pack
from gradfit.parallel import launch

from conftest import clean_mpi_env

pytestmark = pytest.mark.mpi

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "mpi_scripts"
EPS32 = float(np.finfo(np.float32).eps)
STEPS = 5 * (120 // 12)          # fit_equivalence.py: 5 epochs of 120 examples in batches of 12
TOL64, TOL32 = 1e-10, STEPS * EPS32
TIMEOUT = 120                    # per job; generous because CI machines may be loaded



def need_mpi():
    pytest.importorskip("mpi4py")
    if launch.find_mpiexec(required=False) is None:
        pytest.skip("mpiexec not found (pip install 'gradfit[mpi]')")


def job(n, args, timeout=TIMEOUT, cwd=None):
    """Run `args` on n ranks (n = 0: one plain process); (returncode, output).

    On timeout the whole process group (mpiexec and every rank) is killed: status 124."""
    cmd = [str(a) for a in args] if n == 0 else launch.mpiexec_command(n, args)
    proc = subprocess.Popen(cmd, env=clean_mpi_env(), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return 124, proc.communicate()[0]


def relerr(a, b):
    """max |a - b| / max |a|, in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(a).max())


# ------------------------------------------------------------------ one run each: 1, 2, 3 ranks

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{n: (per-rank params, per-rank records, OUT_DIR listing path)} for n = 1 (no MPI), 2, 3."""
    need_mpi()
    got = {}
    for n in (1, 2, 3):
        res, out = tmp_path_factory.mktemp(f"res{n}"), tmp_path_factory.mktemp(f"out{n}")
        args = [sys.executable, SCRIPTS / "fit_equivalence.py", res, out]
        code, text = job(0 if n == 1 else n, args)
        assert code == 0, f"{n} ranks failed (status {code}):\n{text}"
        params = [dict(np.load(res / f"rank{r}.npz")) for r in range(n)]
        records = [json.loads((res / f"rank{r}.json").read_text()) for r in range(n)]
        assert sorted(os.listdir(res)) == sorted(f"rank{r}.{e}" for r in range(n)
                                                 for e in ("npz", "json"))
        got[n] = (params, records, out)
    return got


@pytest.mark.parametrize("n", [2, 3])
def test_n_ranks_train_the_same_model_as_one_process(runs, n):
    one, _, _ = runs[1]
    params, records, _ = runs[n]
    for name in ("adam64", "sgd64", "early", "reg64"):  # float64: Adam, Nesterov SGD, dropout,
        #                                                 weight penalties
        assert params[0][name].dtype == np.float64
        assert relerr(one[0][name], params[0][name]) <= TOL64, name
    assert params[0]["adam32"].dtype == np.float32
    err32 = relerr(one[0]["adam32"], params[0]["adam32"])
    assert err32 <= TOL32, f"float32 differs by {err32:.2e} > {STEPS} steps x eps32"
    # the per-epoch training loss (Allreduced) and metrics follow the one-process run too
    ref = runs[1][1][0]
    for name in ("adam64", "sgd64", "reg64"):
        for key, values in records[0][name]["history"].items():
            assert relerr(ref[name]["history"][key], values) <= TOL64, (name, key)


@pytest.mark.parametrize("n", [2, 3])
def test_every_rank_ends_with_identical_weights_and_logs(runs, n):
    params, records, _ = runs[n]
    for r in range(1, n):
        for name in params[0]:
            assert np.array_equal(params[0][name], params[r][name]), (name, r)
        for name in ("adam64", "sgd64", "adam32", "early", "reg64"):
            assert records[r][name]["history"] == records[0][name]["history"], (name, r)


@pytest.mark.parametrize("n", [2, 3])
def test_validation_metrics_are_exact_over_an_uneven_validation_set(runs, n):
    """37 validation examples (not a multiple of 2 or 3): every rank's val_loss/metric of the last
    epoch equals the mean over all 37 computed by hand from the final weights, so no example was
    padded, dropped or counted twice, and equals the one-process value."""
    _, records, _ = runs[n]
    ref = runs[1][1][0]
    for name, metric in (("adam64", "val_accuracy"), ("sgd64", "val_mae")):
        for rec in records:
            h, hand = rec[name]["history"], rec[name]["hand"]
            assert h["val_loss"][-1] == pytest.approx(hand["loss"], rel=1e-12, abs=0), name
            assert h[metric][-1] == pytest.approx(hand["metric"], rel=1e-12, abs=0), name
            assert h["val_loss"][-1] == pytest.approx(ref[name]["history"]["val_loss"][-1],
                                                      rel=TOL64, abs=0)
    acc = records[0]["adam64"]["history"]["val_accuracy"][-1]
    assert abs(acc * 37 - round(acc * 37)) < 1e-9, f"val_accuracy {acc} is not k/37"


@pytest.mark.parametrize("n", [2, 3])
def test_early_stopping_stops_at_the_same_epoch_on_every_rank(runs, n):
    _, records, _ = runs[n]
    ref = runs[1][1][0]["early"]
    assert ref["stop_training"] and 0 < ref["stopped_epoch"] < 29, "must stop before epoch 30"
    for rec in records:
        assert rec["early"]["stopped_epoch"] == ref["stopped_epoch"], rec["rank"]
        assert len(rec["early"]["history"]["loss"]) == len(ref["history"]["loss"])
        assert rec["early"]["stop_training"]


@pytest.mark.parametrize("n", [2, 3])
def test_only_rank0_writes_checkpoints_and_csv(runs, n):
    _, _, out = runs[n]
    one = sorted(os.listdir(runs[1][2]))
    assert one == [f"ckpt-{e:02d}.gfm" for e in range(1, 6)] + ["log.csv"]
    assert sorted(os.listdir(out)) == one, "ranks other than 0 wrote files (or rank 0 missed some)"
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 and rows[0].startswith("epoch"), rows  # one header, one row per epoch


def test_gradfit_train_under_mpiexec_writes_one_run_folder(tmp_path):
    """`mpiexec -n 2 gradfit train --out run` in an empty folder: exactly one run folder, one set
    of files, no rank-suffixed duplicates, nothing written anywhere else in the folder."""
    need_mpi()
    args = [sys.executable, "-m", "gradfit", "train", "--data", "digits", "--hidden", "16",
            "--epochs", "2", "--batch-size", "32", "--patience", "1", "--out", "run",
            "--verbose", "2"]
    code, out = job(2, args, cwd=tmp_path)
    assert code == 0, out
    assert os.listdir(tmp_path) == ["run"], os.listdir(tmp_path)
    files = set(os.listdir(tmp_path / "run"))
    assert {"config.json", "history.csv", "model.gfm", "results.json"} <= files, files
    assert files <= {"config.json", "history.csv", "model.gfm", "results.json", "history.png"}
    assert not any(re.search(r"rank|\.\d+$|\(1\)", f) for f in files), files
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 1 + 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["mpi_ranks"] == 2
    assert out.count("Training on ") == 1 and "2 MPI ranks x 16 examples per rank" in out, out


@pytest.mark.parametrize("n, batch", [(2, 15), (3, 16)])
def test_indivisible_global_batch_fails_on_every_rank_without_hanging(tmp_path, n, batch):
    need_mpi()
    t0 = time.monotonic()
    code, out = job(n, [sys.executable, SCRIPTS / "fit_bad_batch.py", tmp_path, batch], timeout=60)
    assert code not in (0, 124), f"status {code} (124: hung until the timeout)\n{out}"
    assert time.monotonic() - t0 < 30 and "TRAINED" not in out
    want = (f"batch_size must be a multiple of the {n} MPI ranks, got {batch}; "
            f"e.g. batch_size {batch - batch % n}")
    for r in range(n):
        assert want in (tmp_path / f"rank{r}.txt").read_text(), r
    # The abort hook prints the message too, but when one rank's MPI_Abort tears the job down,
    # Hydra may drop the other ranks' (and rarely even that rank's) last output: seen once in ~20
    # runs at load 3.  So the terminal is only required to show that the job failed.
    assert want in out or "MPI_Abort" in out or "BAD TERMINATION" in out, out


def test_killed_rank_ends_the_job_then_relaunch_resumes_bit_identical(tmp_path):
    """Rank 1 SIGKILLs itself after step 17 of 40 (BackupAndRestore every 3 steps): the job ends
    within seconds, the launcher names rank 1; the same command run again resumes from the step-15
    backup and ends with exactly the weights of an uninterrupted 2-rank run."""
    need_mpi()
    ref, run = tmp_path / "ref", tmp_path / "run"
    ref.mkdir(), run.mkdir()
    script = [sys.executable, SCRIPTS / "fit_resume.py"]
    code, out = job(2, script + [ref, tmp_path / "ref_backup"])
    assert code == 0 and (ref / "steps0").read_text() == "40", out

    command = script + [run, tmp_path / "backup"]
    (run / "kill").write_text("1 17")
    wrapper = [sys.executable, "-m", "gradfit.parallel.launch", "-n", "2", "--timeout", "60", "--"]
    code, out = job(0, wrapper + command)
    ended = time.time()
    assert code not in (0, 124), out
    assert ended - float((run / "killed_at").read_text()) < 10, "the job outlived rank 1 by >10 s"
    assert "gradfit launch: rank 1 (pid" in out and "SIGKILL" in out, out
    assert "DONE rank" not in out and not (run / "rank0.npy").exists()
    assert (tmp_path / "backup" / "backup.gfm").exists()

    code, out = job(2, command)                       # the same command, run again
    assert code == 0, out
    assert (run / "steps0").read_text() == (run / "steps1").read_text() == str(40 - 15), \
        "the relaunch must resume from the step-15 backup, not start again"
    want = np.load(ref / "rank0.npy")
    assert want.dtype == np.float32
    for rank in (0, 1):
        got = np.load(run / f"rank{rank}.npy")
        assert np.array_equal(got, want), f"rank {rank}: max difference {np.abs(got - want).max()}"
    assert not (tmp_path / "backup").exists(), "the backup is deleted when training ends"


def test_data_parallel_benchmark_runs_and_reports_every_part():
    """benchmarks/data_parallel.py on a tiny network: both configurations, every column."""
    need_mpi()
    code, out = job(0, [sys.executable, ROOT / "benchmarks" / "data_parallel.py", "--layers",
                        "8,4,1", "--batches", "8", "--seconds", "0.05", "--fit-steps", "2",
                        "--allreduce-max-kib", "1"], timeout=TIMEOUT)
    assert code == 0, out
    rows = [ln.strip("|").split("|") for ln in out.splitlines()
            if re.match(r"\| (1 process x \d+ threads|2 ranks x 1 thread) \| 8 \|", ln)]
    assert len(rows) == 2 and all(len(r) == 12 for r in rows), out
    assert all(float(r[-2].replace(",", "")) > 0 for r in rows), out    # whole-fit samples/s
    assert "target >= 85%" in out and "PROJECTION" in out and "kernel" in out, out
    assert "OPENBLAS_CORETYPE=unset" in out  # removed for the benchmark's children


# ------------------------------------------------------------------ train_on_batch under MPI
@pytest.mark.parametrize("n", [2, 5])
def test_train_on_batch_under_mpiexec_keeps_the_ranks_equal(tmp_path, n):
    """Each rank passes its own rows (5 ranks: uneven shares of 12); the step is the global
    batch's, so the ranks stay equal, and equal one process given the whole batch."""
    need_mpi()
    script = SCRIPTS / "train_on_batch.py"
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir(), many.mkdir()
    for k, folder in ((0, one), (n, many)):
        code, text = job(k, [sys.executable, script, folder])
        assert code == 0, text
    ref = np.load(one / "rank0.npz")
    ranks = [np.load(many / f"rank{r}.npz") for r in range(n)]
    for r in range(1, n):
        assert np.array_equal(ranks[0]["params"], ranks[r]["params"]), f"rank {r} drifted"
        assert np.array_equal(ranks[0]["losses"], ranks[r]["losses"])
    assert relerr(ref["params"], ranks[0]["params"]) <= TOL64
    assert relerr(ref["losses"], ranks[0]["losses"]) <= TOL64
    assert not np.allclose(ref["losses"][:, 0], ref["losses"][0, 0])


def test_plain_mpiexec_sets_threads_per_rank_and_names_a_killed_rank(tmp_path):
    """The README's `mpiexec -n 2 gradfit train`, with no thread variable set: each rank takes
    its share of the CPUs (not all of them), and a rank killed by SIGKILL is named by its guard."""
    need_mpi()
    env = {k: v for k, v in clean_mpi_env().items() if k not in launch.THREAD_VARS}
    cmd = launch.mpiexec_command(2, [sys.executable, "-m", "gradfit", "train", "--data", "digits",
                                     "--hidden", "400,400", "--epochs", "200", "--patience", "0",
                                     "--out", "run", "--verbose", "2"])
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Epoch 1/"):
                break
        text = "".join(lines)
        cpus = len(os.sched_getaffinity(0))
        assert f"{max(1, cpus // 2)} thread(s) per rank ({cpus} CPUs / 2 ranks on a node" in text, text
        pid = int(re.search(r"rank 1 pid (\d+)@", text).group(1))
        os.kill(pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert f"gradfit: rank 1 (pid {pid} on " in rest and "SIGKILL" in rest, rest


def test_auto_batch_on_two_ranks_follows_one_process(tmp_path):
    """fit(batch_size="auto") under mpiexec -n 2: the same batch-size trajectory as one process
    (the noise estimate pools the global batch) and the same weights (float64, 1e-10), with
    every rank's slice growing with the global batch."""
    need_mpi()
    got = {}
    for n in (0, 2):
        res = tmp_path / f"n{n}"
        res.mkdir()
        code, text = job(n, [sys.executable, SCRIPTS / "fit_auto_batch.py", res])
        assert code == 0, f"{n or 1} rank(s) failed (status {code}):\n{text}"
        ranks = max(n, 1)
        got[n] = ([np.load(res / f"rank{r}.npz")["params"] for r in range(ranks)],
                  [json.loads((res / f"rank{r}.json").read_text()) for r in range(ranks)])
    (one,), (rec1,) = got[0]
    params, recs = got[2]
    assert recs[0]["size"] == 2 and rec1["route"] == recs[0]["route"] == "per_example"
    traj1, traj2 = rec1["trajectory"], recs[0]["trajectory"]
    assert traj2["batch_size"] == traj1["batch_size"] and traj2["step"] == traj1["step"]
    assert traj1["batch_size"][0] == 8 and max(traj1["batch_size"]) >= 64, "the batch should grow"
    noise1 = [b for b in traj1["b_noise"] if b is not None]
    noise2 = [b for b in traj2["b_noise"] if b is not None]
    assert len(noise1) == len(noise2) and relerr(noise1, noise2) <= 1e-10
    assert rec1["history"]["batch_size"] == recs[0]["history"]["batch_size"]
    assert relerr(one, params[0]) <= TOL64
    assert np.array_equal(params[0], params[1]) and recs[1]["trajectory"] == recs[0]["trajectory"]


# ------------------------------------------------------------------ streaming sources (issue 16)
SOURCE_KINDS = ("packed", "block", "memmap", "pydataset", "generator")


@pytest.fixture(scope="module")
def source_runs(tmp_path_factory):
    """{n: (per-rank weights, per-rank records)} of fit_sources.py on 1 process and 2 ranks."""
    need_mpi()
    data = tmp_path_factory.mktemp("source-data")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (264, 10), dtype=np.uint8)     # 11 global batches of 24
    y = (x[:, 0] // 64).astype(np.int64)
    np.save(data / "x.npy", x)
    np.save(data / "y.npy", y)
    pack(x, y, data / "packed", shard_rows=40)
    got = {}
    for n in (0, 2):
        res = tmp_path_factory.mktemp(f"sources{n}")
        code, text = job(n, [sys.executable, SCRIPTS / "fit_sources.py", data, res])
        assert code == 0, f"{n or 1} rank(s) failed (status {code}):\n{text}"
        ranks = max(n, 1)
        got[n] = ([dict(np.load(res / f"rank{r}.npz")) for r in range(ranks)],
                  [json.loads((res / f"rank{r}.json").read_text()) for r in range(ranks)])
    return got


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_two_ranks_over_a_streaming_source_train_the_one_process_model(source_runs, kind):
    (one,), (rec1,) = source_runs[0]
    params, records = source_runs[2]
    assert one[kind].dtype == np.float64
    assert relerr(one[kind], params[0][kind]) <= TOL64, kind
    assert np.array_equal(params[0][kind], params[1][kind])
    assert records[0][kind]["steps"] == rec1[kind]["steps"] == 22     # equal steps, every rank
    for key, values in rec1[kind]["history"].items():
        assert relerr(values, records[0][kind]["history"][key]) <= TOL64, (kind, key)


@pytest.mark.parametrize("kind", ["packed", "block", "memmap"])
def test_each_rank_reads_only_its_share_of_every_global_batch(source_runs, kind):
    (_,), (rec1,) = source_runs[0]
    _, records = source_runs[2]
    trained = 2 * 11 * 24
    assert rec1[kind]["rows_read"] == trained
    assert [r[kind]["rows_read"] for r in records] == [trained // 2, trained // 2]
    # validation: each rank its contiguous half of the 50 rows, every epoch
    assert rec1[kind]["val_rows_read"] == 2 * 50
    assert [r[kind]["val_rows_read"] for r in records] == [50, 50]
