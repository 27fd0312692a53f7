"""The communicator, the watchdog, the launcher and the Allreduce cost model.

Tests marked `mpi` really run ``mpiexec -n 2`` / ``-n 3`` on the scripts in tests/mpi_scripts/
(through subprocess, with a timeout: a hang fails the test instead of hanging CI).
"""
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gradfit.bench import allreduce as bench
from gradfit.parallel import launch
from gradfit.parallel.comm import SerialComm, choose_comm_kind, launched_by_mpi
from gradfit.parallel.watchdog import EXIT_CODE, Watchdog, timeout_from_env

from conftest import clean_mpi_env

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "mpi_scripts"
# ---------------------------------------------------------------- serial: interface and choice

def test_serial_comm_is_the_identity_and_validates():
    c = SerialComm()
    g = np.arange(5.0)
    assert c.rank == 0 and c.size == 1
    assert c.allreduce_(g) is g and np.array_equal(g, np.arange(5.0))
    assert c.bcast_(g, 0) is g and c.bcast_obj({"a": 1}) == {"a": 1}
    assert c.allreduce_scalar(3) == 3 and c.allreduce_array_(np.ones((2, 2))).shape == (2, 2)
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*allreduce_array_"):
        c.allreduce_(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"root must be a rank in 0..0, got 1"):
        c.bcast_(g, root=1)


@pytest.mark.parametrize("env, kind", [
    ({}, "serial"),
    ({"PMI_RANK": "0", "PMI_SIZE": "2"}, "mpi"),          # MPICH hydra, Slurm pmi2
    ({"OMPI_COMM_WORLD_SIZE": "4"}, "mpi"),               # Open MPI
    ({"PMIX_RANK": "1"}, "mpi"),                          # PMIx
    ({"PMI_RANK": "0", "GRADFIT_MPI": "0"}, "serial"),    # forced off
    ({"GRADFIT_MPI": "1"}, "mpi"),                        # forced on
])
def test_choose_comm_kind_detects_launchers_and_honours_GRADFIT_MPI(env, kind):
    assert choose_comm_kind(env) == kind


def test_bad_GRADFIT_MPI_names_the_value():
    with pytest.raises(ValueError, match=r"GRADFIT_MPI='yes'.*1 \(force MPI\), 0"):
        choose_comm_kind({"GRADFIT_MPI": "yes"})
    assert not launched_by_mpi({"SLURM_PROCID": "0"})  # plain srun of a serial job: no MPI


def test_serial_get_comm_never_imports_mpi4py():
    code = ("import sys; from gradfit.parallel.comm import get_comm, SerialComm; "
            "c = get_comm(); assert type(c) is SerialComm, c; "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'; print('serial ok')")
    r = subprocess.run([sys.executable, "-c", code], env=clean_mpi_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "serial ok" in r.stdout, r.stderr


def test_launched_by_mpi_without_mpi4py_is_a_clear_error():
    code = ("import sys; sys.modules['mpi4py'] = None  # import mpi4py now raises ImportError\n"
            "from gradfit.parallel.comm import get_comm\n"
            "try:\n    get_comm()\nexcept ImportError as e:\n    print('ERR', e)")
    r = subprocess.run([sys.executable, "-c", code], env=clean_mpi_env(PMI_RANK=0, PMI_SIZE=2),
                       capture_output=True, text=True, timeout=60)
    assert "ERR this process was started by an MPI launcher (PMI_RANK, PMI_SIZE" in r.stdout, r
    assert "pip install 'gradfit[mpi]'" in r.stdout and "GRADFIT_MPI=0" in r.stdout


# ---------------------------------------------------------------- watchdog (in process)

def test_watchdog_fires_when_no_step_completes():
    fired = []
    dog = Watchdog(SerialComm(), timeout=0.3, on_timeout=fired.append).start()
    time.sleep(0.9)
    dog.stop()
    assert len(fired) == 1 and "this rank is frozen" in fired[0] and "after training step 0" in fired[0]


def test_watchdog_stays_quiet_while_steps_complete():
    fired = []
    with Watchdog(SerialComm(), timeout=0.3, on_timeout=fired.append) as dog:
        for _ in range(15):  # 0.75 s in all, each step well inside the limit
            time.sleep(0.05)
            dog.kick()
    assert fired == [] and dog.steps == 15


def test_watchdog_waiting_in_a_collective_gives_grace_then_says_so():
    comm = SerialComm()
    comm.in_collective = "Allreduce"  # as if blocked waiting for a frozen peer
    fired = []
    dog = Watchdog(comm, timeout=0.2, grace=0.5, on_timeout=fired.append).start()
    time.sleep(0.45)
    assert fired == [], "a waiting rank must let the frozen rank name itself first"
    time.sleep(0.6)
    dog.stop()
    assert len(fired) == 1 and "waited" in fired[0] and "in Allreduce" in fired[0]


def test_watchdog_timeout_settings():
    assert timeout_from_env(None, {"GRADFIT_MPI_TIMEOUT": "2.5"}) == 2.5
    assert timeout_from_env(None, {}) > 0
    assert not Watchdog(SerialComm(), timeout=0).start().enabled
    with pytest.raises(ValueError, match=r"GRADFIT_MPI_TIMEOUT='soon' is not a number"):
        timeout_from_env(None, {"GRADFIT_MPI_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match=r"timeout=-1.*>= 0"):
        Watchdog(SerialComm(), timeout=-1)


# ---------------------------------------------------------------- cost model and projection

def test_ring_allreduce_formula_by_hand():
    # p=4, n=1e6 float32, 1 GB/s, 10 us: 2*3/4 * 4e6 B / 1e9 B/s + 2*3 * 1e-5 s = 6 ms + 60 us
    assert bench.ring_allreduce_seconds(10**6, 4, 1e9, 1e-5) == pytest.approx(6.06e-3, rel=1e-12)
    assert bench.ring_allreduce_seconds(10**6, 1, 1e9, 1e-5) == 0.0
    assert bench.gbps_to_Bps(10) == 1.25e9
    with pytest.raises(ValueError, match=r"p \(ranks\) must be an int >= 1, got 0"):
        bench.ring_allreduce_seconds(10, 0, 1e9, 1e-5)
    with pytest.raises(ValueError, match=r"bandwidth_Bps .* got 0"):
        bench.ring_allreduce_seconds(10, 2, 0, 1e-5)


def test_fit_recovers_latency_and_bandwidth_of_synthetic_measurements():
    p, lat, bw = 3, 7e-6, 2.5e9
    rows = [{"bytes": b, "seconds": bench.ring_allreduce_seconds(b / 4, p, bw, lat)}
            for b in bench.DEFAULT_SIZES]
    got_lat, got_bw = bench.fit_latency_bandwidth(rows, p)
    assert got_lat == pytest.approx(lat, rel=1e-6) and got_bw == pytest.approx(bw, rel=1e-6)


def test_projection_matches_the_model_and_is_labelled():
    compute, n = 0.020, 669_706
    rows = bench.project_scaling(compute, n, latency_s=5e-6)
    r = next(r for r in rows if r["nodes"] == 64 and r["gbps"] == 10)
    t = 2 * 63 / 64 * n * 4 / 1.25e9 + 2 * 63 * 5e-6
    assert r["allreduce_s"] == pytest.approx(t) and r["efficiency"] == pytest.approx(compute / (compute + t))
    fast = next(r for r in rows if r["nodes"] == 64 and r["gbps"] == 100)
    assert fast["efficiency"] > r["efficiency"]
    strong = bench.project_scaling(compute, n, latency_s=5e-6, scaling="strong")
    s = next(r for r in strong if r["nodes"] == 8 and r["gbps"] == 10)
    assert s["efficiency"] == pytest.approx(compute / (8 * (compute / 8 + s["allreduce_s"])))
    assert bench.format_projection(rows, compute, n).startswith("PROJECTION")
    with pytest.raises(ValueError, match="scaling must be 'weak' or 'strong', got 'linear'"):
        bench.project_scaling(compute, n, scaling="linear")


def test_mlp_param_count():
    assert bench.mlp_param_count((784, 512, 512, 10)) == 784 * 512 + 512 + 512 * 512 + 512 + 5130


# ---------------------------------------------------------------- launcher helpers

HYDRA_REPORT = """gradfit: 3 MPI ranks (MPICH Version: 5.0.2): rank 0 pid 10475@vm, rank 1 pid 10476@vm, rank 2 pid 10477@vm

===================================================================================
=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES
=   PID 10476 RUNNING AT vm
=   EXIT CODE: 9
=   CLEANING UP REMAINING PROCESSES
"""


def test_explain_failure_maps_hydra_pid_to_rank():
    assert launch.rank_table(HYDRA_REPORT) == {(10475, "vm"): 0, (10476, "vm"): 1, (10477, "vm"): 2}
    why = launch.explain_failure(HYDRA_REPORT)
    assert why.startswith("gradfit launch: rank 1 (pid 10476 on vm) was killed by signal 9 (SIGKILL)")
    assert launch.explain_failure("all fine") is None


def test_mpiexec_command_and_thread_env():
    cmd = launch.mpiexec_command(3, ["gradfit", "train"], mpiexec="/x/mpiexec")
    assert cmd == ["/x/mpiexec", "-n", "3", "gradfit", "train"]
    with pytest.raises(ValueError, match=r"ranks n must be an int >= 1, got 0"):
        launch.mpiexec_command(0, ["x"], mpiexec="m")
    with pytest.raises(FileNotFoundError, match="hostfile 'nope' does not exist"):
        launch.mpiexec_command(2, ["x"], mpiexec="m", hostfile="nope")
    env = launch.thread_env(2, {})
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "2"
    with pytest.raises(ValueError, match=r"threads_per_rank must be an int >= 1, got 0"):
        launch.thread_env(0)


# ---------------------------------------------------------------- real mpiexec runs

def _need_mpi():
    pytest.importorskip("mpi4py")
    if launch.find_mpiexec(required=False) is None:
        pytest.skip("mpiexec not found (pip install 'gradfit[mpi]')")


def mpirun(n, script, *args, timeout=30, **env):
    _need_mpi()
    cmd = launch.python_command(n, SCRIPTS / script, *args)
    t0 = time.monotonic()
    code, out, why = launch.run(cmd, timeout=timeout, env=clean_mpi_env(**env))
    return code, out, why, time.monotonic() - t0


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_on_real_ranks(n):
    code, out, _, _ = mpirun(n, "collectives.py")
    assert code == 0, out
    assert sorted(re.findall(r"OK rank (\d+) of (\d+)", out)) == [(str(r), str(n)) for r in range(n)]
    assert f"gradfit: {n} MPI ranks" in out  # the start-up line with every rank's pid


@pytest.mark.mpi
def test_no_fault_no_false_alarm():
    code, out, _, _ = mpirun(2, "faults.py", "none", "0", "2")
    assert code == 0 and out.count("DONE rank") == 2, out


@pytest.mark.mpi
def test_killed_rank_ends_the_job_fast_and_is_named():
    """SIGKILL on rank 1 of 3 at step 3: Hydra ends every rank; the launcher names rank 1."""
    _need_mpi()
    cmd = [sys.executable, "-m", "gradfit.parallel.launch", "-n", "3", "--timeout", "30", "--",
           sys.executable, str(SCRIPTS / "faults.py"), "kill", "1"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=clean_mpi_env(), capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode not in (0, 124), r.stdout  # failed, and not by our timeout
    assert elapsed < 15, f"job took {elapsed:.1f} s to end after a rank died"
    assert "DONE rank" not in r.stdout
    # the guard names rank 1 itself: Hydra's own report may name a rank it killed afterwards
    assert re.search(r"gradfit: rank 1 \(pid \d+ on \S+\) was killed by signal 9 \(SIGKILL\)",
                     r.stdout), r.stdout
    assert "gradfit launch: rank 1 (pid" in r.stdout and "SIGKILL" in r.stdout, r.stdout
    assert not re.search(r"rank [02] \(pid", r.stdout), r.stdout


@pytest.mark.mpi
def test_uncaught_exception_on_one_rank_aborts_all():
    """Without the abort hook this hangs (rank 1 in MPI_Finalize, rank 0 in Allreduce)."""
    code, out, _, elapsed = mpirun(2, "faults.py", "raise", "1")
    assert code not in (0, 124) and elapsed < 15, out
    assert "gradfit: rank 1 of 2" in out and "uncaught RuntimeError" in out, out


@pytest.mark.mpi
def test_watchdog_names_the_frozen_rank():
    code, out, _, elapsed = mpirun(3, "faults.py", "freeze", "1", "2")
    assert code == EXIT_CODE and elapsed < 15, out
    assert re.search(r"rank 1 of 3 .*this rank is frozen", out), out
    assert not re.search(r"rank [02] of 3 .*this rank is frozen", out), out


@pytest.mark.mpi
def test_watchdog_of_waiting_ranks_ends_a_silent_freeze():
    """The frozen rank runs no watchdog (as if stuck in C code holding the GIL)."""
    code, out, _, elapsed = mpirun(2, "faults.py", "silent", "1", "1")
    assert code == EXIT_CODE and elapsed < 15, out
    assert re.search(r"rank 0 of 2 .*waited .* in Allreduce .*another rank is frozen", out), out


@pytest.mark.mpi
def test_allreduce_benchmark_runs_and_prints_both_tables():
    _need_mpi()
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "allreduce.py"), "-n", "2",
                        "--min-time", "0.01", "--max-mib", "0.01", "--batch", "8"],
                       env=clean_mpi_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MEASURED" in r.stdout and "PROJECTION" in r.stdout and "2 ranks" in r.stdout
    sizes = re.findall(r"^\| (\d+) B \| \d+ \| ([\d.]+) us", r.stdout, re.M)
    assert [s for s, _ in sizes] == ["16", "64", "256"] and all(float(t) > 0 for _, t in sizes)


def test_guard_passes_exit_codes_and_names_a_signal_death(capfd, monkeypatch):
    from gradfit.parallel import guard
    monkeypatch.setenv("PMI_RANK", "4")
    assert guard.main([sys.executable, "-c", "import sys; sys.exit(3)"]) == 3
    assert capfd.readouterr().err == ""
    code = guard.main([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert code == 128 + 9
    assert re.search(r"gradfit: rank 4 \(pid \d+ on \S+\) was killed by signal 9 \(SIGKILL\)",
                     capfd.readouterr().err)
