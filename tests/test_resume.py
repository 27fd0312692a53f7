"""Kill-and-resume equals uninterrupted, bit for bit: a real subprocess killed with SIGKILL,
or stopped by SIGINT / SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "resumable_fit.py")


def _run(tmp, name, kill_at, save_freq, backup):
    out = str(tmp / f"{name}.npy")
    proc = subprocess.run([sys.executable, SCRIPT, str(backup), out, str(kill_at), str(save_freq)],
                          capture_output=True, text=True, timeout=120)
    return proc, out


@pytest.mark.parametrize("save_freq, kill_at", [("epoch", 15), ("3", 17), ("3", 6), ("3", 40)])
def test_sigkill_then_resume_is_bit_identical(tmp_path, save_freq, kill_at):
    # 200 examples / batch 32 = 6 steps per epoch: kills land mid-epoch
    proc, ref = _run(tmp_path, "ref", -1, save_freq, tmp_path / "ref_backup")
    assert proc.returncode == 0, proc.stderr
    proc, _ = _run(tmp_path, "killed", kill_at, save_freq, tmp_path / "backup")
    assert proc.returncode == -9, f"the run should have been killed: {proc.returncode} {proc.stderr}"
    assert os.path.exists(tmp_path / "backup" / "backup.gfm")
    proc, resumed = _run(tmp_path, "resumed", -1, save_freq, tmp_path / "backup")
    assert proc.returncode == 0, proc.stderr
    a, b = np.load(ref), np.load(resumed)
    assert a.dtype == np.float32
    assert np.array_equal(a, b), f"max difference {np.abs(a - b).max()}"
    np.testing.assert_array_equal(np.load(ref + ".loss.npy")[-1], np.load(resumed + ".loss.npy")[-1])
    lr_ref, lr_resumed = np.load(ref + ".lr.npy"), np.load(resumed + ".lr.npy")
    assert lr_ref[-1] == lr_resumed[-1]
    assert lr_ref.min() < lr_ref[0], "ReduceLROnPlateau should have lowered the rate in this run"


def test_corrupt_backup_is_a_clear_error(tmp_path):
    proc, _ = _run(tmp_path, "killed", 15, "epoch", tmp_path / "backup")
    path = tmp_path / "backup" / "backup.gfm"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    proc, _ = _run(tmp_path, "resumed", -1, "epoch", tmp_path / "backup")
    assert proc.returncode != 0
    assert "checksum" in proc.stderr and "delete" in proc.stderr


INTERRUPTIBLE = os.path.join(os.path.dirname(__file__), "scripts", "interruptible_fit.py")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_after_a_whole_step_and_the_rerun_resumes_bit_identical(tmp_path, sig):
    """A real signal to a training subprocess: it ends cleanly (status 0) after a whole step,
    says so, keeps a backup at that step although save_freq=False, and the same command run
    again finishes with the weights of an uninterrupted run."""
    def start(name, backup):
        progress = tmp_path / f"{name}.progress"
        out = tmp_path / f"{name}.npy"
        proc = subprocess.Popen([sys.executable, INTERRUPTIBLE, str(backup), str(out), str(progress)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc, out, progress

    ref, ref_out, _ = start("ref", tmp_path / "ref_backup")
    assert ref.wait(timeout=120) == 0, ref.stderr.read()
    proc, out, progress = start("run", tmp_path / "backup")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:     # wait for step 15 (of 60), mid-epoch 2
        if progress.exists() and len(progress.read_text().splitlines()) >= 15:
            break
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"{signal.Signals(sig).name}: stopping after the current step" in stderr
    assert "Traceback" not in stderr
    ended = json.loads(open(str(out) + ".json").read())
    assert ended["stop_reason"] == "interrupted"
    steps_done = len(progress.read_text().splitlines())
    assert 15 <= steps_done < 60, "stopped after the step in progress, not at the end"
    assert os.path.exists(tmp_path / "backup" / "backup.gfm"), "the backup of the stop is kept"
    again, out2, progress2 = start("run", tmp_path / "backup")
    assert again.wait(timeout=120) == 0, again.stderr.read()
    assert json.loads(open(str(out2) + ".json").read())["stop_reason"] is None
    # both launches append to one progress file: 60 steps in all, none repeated, and the end
    # is where the uninterrupted run ended
    assert len(progress2.read_text().splitlines()) == 60
    assert np.array_equal(np.load(ref_out), np.load(out2))
    assert not os.path.exists(tmp_path / "backup"), "a finished run deletes its backup"


AUTO_SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "auto_batch_fit.py")


@pytest.mark.parametrize("save_freq, kill_at", [("3", 26), ("epoch", 30), ("4", 41)])
def test_auto_batch_sigkill_after_the_batch_grew_then_resume_is_bit_identical(tmp_path, save_freq,
                                                                           kill_at):
    """batch_size="auto": SIGKILL mid-epoch after the batch grew (from 8 to 64 by step 26, to
    128 by step 41), resume from the last backup: the same weights bit for bit, the same
    batch-size trajectory, the same History (batch sizes, learning rates of ReduceLROnPlateau
    under the factor, B_simple)."""
    def run(name, kill, backup):
        out = str(tmp_path / f"{name}.npz")
        proc = subprocess.run([sys.executable, AUTO_SCRIPT, str(backup), out, str(kill), save_freq],
                              capture_output=True, text=True, timeout=120)
        return proc, out

    proc, ref = run("ref", -1, tmp_path / "ref_backup")
    assert proc.returncode == 0, proc.stderr
    proc, _ = run("killed", kill_at, tmp_path / "backup")
    assert proc.returncode == -9, f"the run should have been killed: {proc.returncode} {proc.stderr}"
    proc, resumed = run("resumed", -1, tmp_path / "backup")
    assert proc.returncode == 0, proc.stderr
    a, b = np.load(ref)["params"], np.load(resumed)["params"]
    assert np.array_equal(a, b), f"max difference {np.abs(a - b).max()}"
    ref_rec, res_rec = (json.loads(open(p + ".json").read()) for p in (ref, resumed))
    assert res_rec["trajectory"] == ref_rec["trajectory"]
    batches = ref_rec["trajectory"]["batch_size"]
    assert batches[0] == 8 and max(batches) == 128, "the batch should have grown in this run"
    grown = [s for s, b in zip(ref_rec["trajectory"]["step"], batches) if b > 8]
    assert grown[0] < kill_at, "the kill should come after the batch grew"
    for key in ("batch_size", "learning_rate", "loss", "lr_factor"):
        assert res_rec["history"][key] == ref_rec["history"][key], key
    assert min(ref_rec["history"]["learning_rate"]) < 3e-3, "ReduceLROnPlateau should have acted"
