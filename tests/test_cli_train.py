"""`gradfit train` as a user meets it: bad inputs refused before anything happens, run folders
never overwritten by accident, every ending leaving a consistent folder, resumes that say what
they change.

Every refused case of the table asserts the exit status 2, the message, that nothing was printed
to stdout, and that no file of the working folder was created, changed or removed.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gradfit import load_model
from gradfit.cli import main
from gradfit.commands import run_folder


def snapshot(root: Path) -> dict:
    """{relative path: sha256} of every file below root (and the folders, as None)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return out


def write_data(folder: Path):
    """Data files a user might have: good labels, labels with -1 / 0.5 / a stray class, ..."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype("float32")
    y = (x[:, 0] > 0).astype(int) * 2 + (x[:, 1] > 0)           # classes 0..3
    np.savez(folder / "good.npz", x=x, y=y)
    for name, (row, value) in {"minus1": (5, -1), "half": (7, 0.5), "stray": (9, 4)}.items():
        bad = y.astype(float) if name == "half" else y.copy()
        bad[row] = value
        np.savez(folder / f"{name}.npz", x=x, y=bad)
    np.savez(folder / "keys.npz", features=x, target=y)
    nan = x.copy()
    nan[11, 2] = np.nan
    np.savez(folder / "nan.npz", x=nan, y=y)
    np.savez(folder / "reg.npz", x=x, y=x[:, 0] * 2.5 + 0.1)
    (folder / "text.csv").write_text("a,b,label\n1,2,0\n3,x,1\n")


def finished_run(folder: Path):
    folder.mkdir()
    (folder / "results.json").write_text('{"ended": "finished"}\n')
    (folder / "model.gfm").write_bytes(b"weights")


def interrupted_run(folder: Path):
    (folder / "backup").mkdir(parents=True)
    (folder / "backup" / "backup.gfm").write_bytes(b"backup")
    (folder / "config.json").write_text("{}\n")


def locked_run(folder: Path):
    folder.mkdir()
    (folder / run_folder.LOCK).write_text(json.dumps(
        {"pid": os.getpid(), "host": os.uname().nodename, "started": "now"}) + "\n")


BAD = {
    # flags
    "epochs 0": (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
    "batch size": (["--batch-size", "-3"], "argument --batch-size: must be an integer >= 1"),
    "dropout 1": (["--dropout", "1"], "argument --dropout: must be a finite number >= 0.0 and < 1.0"),
    "val fraction 1": (["--val-fraction", "1"], "argument --val-fraction: must be a finite number"),
    "learning rate nan": (["--learning-rate", "nan"], "argument --lr/--learning-rate: must be a finite number >= 0 or a schedule"),
    "seed": (["--seed", "-1"], "argument --seed: must be an integer >= 0"),
    "verbose": (["--verbose", "3"], "argument --verbose: invalid choice: '3'"),
    "optimizer": (["--optimizer", "adamx"], "argument --optimizer: invalid choice: 'adamx'"),
    "activation": (["--activation", "swish"], "argument --activation: invalid choice: 'swish'"),
    "num classes 1": (["--num-classes", "1"], "argument --num-classes: must be an integer >= 2"),
    "hidden": (["--hidden", "10,,x"], "--hidden must be comma-separated"),
    "hidden 0": (["--hidden", "10,0"], "--hidden widths must be positive"),
    "momentum for adam": (["--optimizer", "adam", "--momentum", "0.9"],
                          "adam takes: --learning-rate, --beta-1"),
    "backup without out": (["--backup", "--out", None], "--backup must be given with --out"),
    "patience without validation": (["--val-fraction", "0"],
                                    "--patience must be 0 when there is no validation set"),
    "decay without schedule": (["--decay-epochs", "3"],
                               "--decay-epochs must be given with --schedule linear or cosine"),
    "end fraction 2": (["--schedule", "linear", "--end-lr-fraction", "2"],
                       "argument --end-lr-fraction: must be a finite number >= 0.0 and <= 1.0"),
    "schedule with auto": (["--schedule", "cosine", "--batch-size", "auto"],
                           "--schedule must be constant with --batch-size auto"),
    "schedule for lm": (["--schedule", "linear", "--optimizer", "lm"],
                        "--schedule must be constant for --optimizer lm"),
    "network too large": (["--hidden", "200000,200000"],
                          "--hidden must be a network that fits in memory"),
    # data files
    "missing file": (["--data", "{tmp}/none.npz"], "does not exist"),
    "npz keys": (["--data", "{tmp}/keys.npz"], "name the features and the targets with --x-key and --y-key"),
    "label -1": (["--data", "{tmp}/minus1.npz"], "minus1.npz: -1) that are not class labels"),
    "label 0.5": (["--data", "{tmp}/half.npz"], "/half.npz: 0.5) are not class labels"),
    "stray label": (["--data", "{tmp}/stray.npz"], "a stray label? Fix those rows, or use --num-classes 5"),
    "too few classes": (["--data", "{tmp}/good.npz", "--num-classes", "3"],
                        "--num-classes must be more than the largest label 3"),
    "regression as classes": (["--data", "{tmp}/reg.npz", "--task", "classification"],
                              "are not class labels"),
    "NaN in x": (["--data", "{tmp}/nan.npz"], "NaN or inf"),
    "csv text": (["--data", "{tmp}/text.csv"], "line 3, column 2: 'x' is not a number"),
    # run folders
    "finished run": (["--out", "{tmp}/done"], "it holds a finished run (results.json): choose "
                     "another --out, or add --overwrite to replace it"),
    "interrupted run": (["--out", "{tmp}/stopped"], "add --backup to resume it, or --overwrite"),
    "locked": (["--out", "{tmp}/busy"], "another gradfit run (pid"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_are_refused_before_anything_happens(case, tmp_path, monkeypatch, capsys):
    write_data(tmp_path)
    finished_run(tmp_path / "done")
    interrupted_run(tmp_path / "stopped")
    locked_run(tmp_path / "busy")
    monkeypatch.chdir(tmp_path)
    args, message = BAD[case]
    argv = ["train", "--epochs", "2", "--verbose", "0", "--out", str(tmp_path / "new")]
    for i, a in enumerate(args):
        if a is None:          # remove the option before it (and its value) from the defaults
            flag = args[i - 1]
            k = argv.index(flag)
            del argv[k:k + 2]
            args = args[:i - 1] + args[i + 1:]
            break
    argv += [a.format(tmp=tmp_path) for a in args]
    before = snapshot(tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert message in captured.err, captured.err
    assert captured.out == "", "nothing is printed before the input is checked"
    assert "Traceback" not in captured.err
    assert snapshot(tmp_path) == before, "a refused run changed files"


def run_train(tmp_path, *args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "gradfit", "train", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env={**os.environ, **(env or {})})


def test_overwrite_replaces_a_finished_run_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    finished_run(out)
    (out / run_folder.LOCK).write_text(json.dumps({"pid": 2 ** 22 + 12345,
                                                   "host": os.uname().nodename}) + "\n")
    assert main(["train", "--epochs", "1", "--hidden", "8", "--verbose", "0", "--out", str(out),
                 "--overwrite"]) == 0
    printed = capsys.readouterr().out
    assert "took over the lock of pid" in printed and "(replacing what it held)" in printed
    assert json.loads((out / "results.json").read_text())["ended"] == "finished"
    assert (out / "model.gfm").read_bytes() != b"weights"
    assert not (out / run_folder.LOCK).exists(), "the lock is released at the end"


def strict_json(path):
    def no_nan(value):
        raise AssertionError(f"{path} holds {value}, which is not JSON")
    return json.loads(Path(path).read_text(), parse_constant=no_nan)


def test_a_nan_stop_ends_cleanly_with_valid_json_and_no_useless_model(tmp_path, capsys):
    out = tmp_path / "nan"
    code = main(["train", "--epochs", "3", "--out", str(out), "--verbose", "0",
                 "--optimizer", "sgd", "--learning-rate", "1e6"])
    printed = capsys.readouterr()
    assert code == 3
    results = strict_json(out / "results.json")
    assert results["ended"] == "nan" and results["epochs_run"] == 0
    assert results["kept_weights"]["saved"] is False and not (out / "model.gfm").exists()
    last = printed.out.strip().splitlines()[-1]
    assert last.startswith("Stopped at epoch 1, step ") and "no model saved" in last
    assert printed.out.count("the loss became nan") == 1, "the NaN stop is said once"
    assert "RuntimeWarning" not in printed.err


def test_early_stopping_reports_the_epoch_it_kept(tmp_path, capsys):
    out = tmp_path / "early"
    assert main(["train", "--epochs", "60", "--patience", "2", "--hidden", "16", "--out", str(out),
                 "--verbose", "0", "--learning-rate", "0.05"]) == 0
    results = strict_json(out / "results.json")
    history = (out / "history.csv").read_text().splitlines()
    assert results["ended"] == "early_stop", results
    kept = results["kept_weights"]["epoch"]
    assert kept == results["epochs_run"] - 2, "patience 2: the best epoch is 2 before the last"
    header = history[0].split(",")
    row = dict(zip(header, history[kept].split(",")))     # history[0] is the header
    assert results["final"]["val_loss"] == pytest.approx(float(row["val_loss"]))
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"Stopped early at epoch {results['epochs_run']} (val_loss did not "
                           f"improve for 2 epochs); kept the weights of epoch {kept} (best val_loss")


def test_a_linear_schedule_decays_per_step_over_the_decay_epochs(tmp_path):
    out = tmp_path / "sched"
    assert main(["train", "--hidden", "16", "--epochs", "4", "--patience", "0", "--batch-size", "64",
                 "--lr", "0.01", "--schedule", "linear", "--decay-epochs", "2",
                 "--end-lr-fraction", "0.1", "--out", str(out), "--verbose", "0"]) == 0
    config = strict_json(out / "config.json")
    steps = config["train_examples"] // 64
    assert config["optimizer_config"]["config"]["learning_rate"] == {
        "class_name": "PolynomialDecay",
        "config": {"initial_learning_rate": 0.01, "decay_steps": 2 * steps,
                   "end_learning_rate": pytest.approx(0.001), "power": 1.0, "cycle": False}}
    rows = [dict(zip(*(ln.split(",") for ln in (lines[0], row))))
            for lines in [(out / "history.csv").read_text().splitlines()] for row in lines[1:]]
    rates = [float(r["learning_rate"]) for r in rows]    # logged as Keras does: the next step's
    expected = [0.01 - 0.009 * min(e * steps, 2 * steps) / (2 * steps) for e in (1, 2, 3, 4)]
    assert rates == pytest.approx(expected, rel=1e-5)
    assert rates[0] == pytest.approx(0.0055) and rates[1:] == pytest.approx([0.001] * 3)


# ------------------------------------------------------------------ Ctrl-C, then resume
ARGS = ["--hidden", "600,600", "--patience", "0", "--verbose", "2", "--seed", "5"]
EPOCHS = "12"        # the signal goes out when epoch 1 ends: it lands in one of epochs 2..12


def test_ctrl_c_keeps_the_model_and_a_backup_and_the_resume_is_exact(tmp_path):
    ref = run_train(tmp_path, "--epochs", EPOCHS, "--out", "ref", *ARGS)
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen([sys.executable, "-m", "gradfit", "train", "--epochs", EPOCHS,
                             "--out", "run", *ARGS], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:          # interrupt as epoch 1 ends
        lines.append(line)
        if line.startswith(f"Epoch 1/{EPOCHS}"):
            proc.send_signal(signal.SIGINT)
            break
    rest, err = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    assert proc.returncode == 130, err
    assert err.count("SIGINT: stopping after the current step") == 1 and "Traceback" not in err
    last = out.strip().splitlines()[-1]
    assert re.match(r"Interrupted at epoch ([2-9]|1[0-2])(, step \d+)?; kept the weights of ",
                    last), last
    assert f"Resume with: gradfit train --epochs {EPOCHS} --out run" in last
    assert last.endswith("--backup")
    run = tmp_path / "run"
    assert (run / "model.gfm").exists() and (run / "backup" / "backup.gfm").exists()
    assert strict_json(run / "results.json")["ended"] == "interrupted"
    shutil.copytree(run, tmp_path / "other")

    resumed = run_train(tmp_path, "--epochs", EPOCHS, "--out", "run", *ARGS, "--backup")
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(r"\(resuming at epoch \d+(, step \d+)? from its backup\)", resumed.stdout)
    assert not (run / "backup").exists()
    a, b = load_model(tmp_path / "ref" / "model.gfm"), load_model(run / "model.gfm")
    assert np.array_equal(a.params, b.params), "the resumed run ends where the uninterrupted one did"
    assert strict_json(run / "config.json")["resumes"][0]["changed"] == {}   # nothing changed

    # a resume may change the learning rate (applied, said, recorded) but not the network
    other = tmp_path / "other"
    before = snapshot(other)
    refused = run_train(tmp_path, "--epochs", EPOCHS, "--out", "other", *ARGS, "--backup",
                        "--hidden", "300")
    assert refused.returncode == 2
    assert "--hidden must be '600,600', as in the run being resumed, got '300'" in refused.stderr
    assert snapshot(other) == before, "a refused resume changed the folder"
    changed = run_train(tmp_path, "--epochs", EPOCHS, "--out", "other", *ARGS, "--backup",
                        "--learning-rate", "0.0005")
    assert changed.returncode == 0, changed.stderr
    assert "learning_rate 0.001 -> 0.0005" in changed.stdout
    config = strict_json(other / "config.json")
    assert config["resumes"][-1]["changed"]["learning_rate"] == [0.001, 0.0005]
    assert config["learning_rate"] == 0.0005
    history = (other / "history.csv").read_text().splitlines()
    assert history[-1].split(",")[history[0].split(",").index("learning_rate")] == "0.0005"
