"""Kill-and-resume over streaming sources: a real subprocess training on a packed directory (full
permutation or block shuffle), a memmap, a PyDataset or a generator, SIGKILLed mid-epoch,
resumes at the same batch and ends with the weights of an uninterrupted run, bit for bit. And,
past Keras and Mosaic: a 2-rank run killed mid-epoch resumes on 1 rank (and the reverse) within
1e-10 (float64) of the uninterrupted run, since the global batch never depends on the rank count.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import gradfit
from gradfit.callbacks import BackupAndRestore, Callback
from gradfit.datasets import DatasetError, pack
from gradfit.datasets import open as open_packed

from test_mpi_fit import job, need_mpi, relerr

SCRIPT = Path(__file__).resolve().parent / "scripts" / "stream_fit.py"
KINDS = ["packed", "block", "memmap", "pydataset", "generator"]
STEPS = 3 * 11                     # 3 epochs of 264 rows in batches of 24
KILL_AT = 17                       # epoch 2, step 6; the last backup (every 4 steps) at step 16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream-data")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (264, 10), dtype=np.uint8)
    y = (x[:, 0] // 64).astype(np.int64)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    pack(x, y, folder / "packed", shard_rows=40)     # 7 shards, the last one of 24 rows
    return folder


def _run(ranks, kind, data, backup, out, kill_at=-1):
    args = [sys.executable, SCRIPT, kind, data, backup, out, kill_at]
    if ranks == 0:
        return job(0, args)
    wrapper = [sys.executable, "-m", "gradfit.parallel.launch", "-n", str(ranks), "--timeout",
               "60", "--"]
    return job(0, wrapper + args)


def _result(out):
    return np.load(str(out) + ".npy"), json.loads(Path(str(out) + ".json").read_text())


@pytest.mark.parametrize("kind", KINDS)
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, data, kind):
    code, text = _run(0, kind, data, tmp_path / "ref_backup", tmp_path / "ref")
    assert code == 0, text
    code, text = _run(0, kind, data, tmp_path / "backup", tmp_path / "run", KILL_AT)
    assert code == -9, f"the run should have been killed (status {code}):\n{text}"
    assert (tmp_path / "backup" / "backup.gfm").exists()
    code, text = _run(0, kind, data, tmp_path / "backup", tmp_path / "run")
    assert code == 0, text
    (want, ref), (got, res) = _result(tmp_path / "ref"), _result(tmp_path / "run")
    assert res["steps"] == STEPS - 16, "the resume starts after the step-16 backup"
    assert want.dtype == np.float64 and np.array_equal(got, want), \
        f"max difference {np.abs(got - want).max()}"
    assert res["history"] == ref["history"]
    assert not (tmp_path / "backup").exists(), "a finished run deletes its backup"


def test_a_backup_refuses_other_data(tmp_path, data):
    code, text = _run(0, "packed", data, tmp_path / "backup", tmp_path / "run", KILL_AT)
    assert code == -9, text
    other = tmp_path / "other"
    other.mkdir()
    x = np.load(data / "x.npy")
    np.save(other / "x.npy", x)
    np.save(other / "y.npy", np.load(data / "y.npy"))
    pack(x[::-1], np.load(data / "y.npy")[::-1], other / "packed", shard_rows=40)
    code, text = _run(0, "packed", other, tmp_path / "backup", tmp_path / "run")
    assert code != 0 and "the backup was written for other data (index_sha256" in text, text
    assert (tmp_path / "backup" / "backup.gfm").exists(), "the refused backup is kept"


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["packed", "generator", "pydataset"])
@pytest.mark.parametrize("before, after", [(2, 0), (0, 2)], ids=["2 ranks -> 1", "1 -> 2 ranks"])
def test_a_run_killed_mid_epoch_resumes_on_another_number_of_ranks(tmp_path, data, kind, before,
                                                                   after):
    need_mpi()
    code, text = _run(0, kind, data, tmp_path / "ref_backup", tmp_path / "ref")
    assert code == 0, text
    code, text = _run(before, kind, data, tmp_path / "backup", tmp_path / "run", KILL_AT)
    assert code != 0 and "DONE" not in text, text
    assert (tmp_path / "backup" / "backup.gfm").exists()
    code, text = _run(after, kind, data, tmp_path / "backup", tmp_path / "run")
    assert code == 0, text
    (want, ref), (got, res) = _result(tmp_path / "ref"), _result(tmp_path / "run")
    assert res["ranks"] == max(after, 1) and res["steps"] == STEPS - 16
    assert relerr(want, got) <= 1e-10, relerr(want, got)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert relerr(ref["history"][key], res["history"][key]) <= 1e-10, key


def test_a_shard_damaged_mid_run_keeps_the_last_backup_and_the_repaired_run_resumes(tmp_path,
                                                                                  data):
    """fit over a packed set with BackupAndRestore every 3 steps; a shard truncated after step
    7: fit stops at its batch with the message, the backup of step 6 stays; with the shard's
    bytes back, the same fit resumes from it and ends with the uninterrupted weights."""
    def model():
        gradfit.set_random_seed(2)
        m = gradfit.Sequential([gradfit.Input(shape=(10,)), gradfit.Dense(8, activation="relu"),
                                gradfit.Dense(4, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return m
    packed = tmp_path / "packed"
    shutil.copytree(data / "packed", packed)
    shard = packed / "shard-00004.npy"
    good = shard.read_bytes()

    class Damage(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.train_state.epoch == 0 and batch + 1 == 7:
                shard.write_bytes(good[:500])

    want = model()
    want.fit(open_packed(packed), batch_size=24, epochs=2, verbose=0)
    backup = tmp_path / "backup"
    run = model()
    with pytest.raises(DatasetError, match=r"epoch 1, batch \d+: .*shard-00004.npy changed while "
                                           r"training"):
        run.fit(open_packed(packed, workers=0), batch_size=24, epochs=2, verbose=0,
                callbacks=[Damage(), BackupAndRestore(backup, save_freq=3)])
    assert (backup / "backup.gfm").exists(), "the last good backup is kept"
    shard.write_bytes(good)
    again = model()
    again.fit(open_packed(packed), batch_size=24, epochs=2, verbose=0,
              callbacks=[BackupAndRestore(backup, save_freq=3)])
    assert np.array_equal(again.params, want.params)
    assert not backup.exists()
