"""The command line: train writes a complete run folder; evaluate/predict use it; help and
errors are clear."""
import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

import gradfit
from gradfit.cli import SUBCOMMANDS, main
from gradfit.commands import train as train_command


def test_train_evaluate_predict_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--hidden", "32", "--out", str(out), "--verbose", "0",
                 "--patience", "2", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "Task: classification, 10 classes (labels 0..9)" in printed
    last = printed.strip().splitlines()[-1]
    assert last.startswith("Finished 3 epochs; kept the weights of epoch ") and "test loss" in last
    for name in ("model.gfm", "history.csv", "history.png", "config.json", "results.json"):
        assert (out / name).stat().st_size > 0, name
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "digits" and config["hidden"] == "32" and config["epochs"] == 3
    assert config["optimizer_config"]["class_name"] == "Adam"
    results = json.loads((out / "results.json").read_text())
    assert results["epochs_run"] == 3 and results["ended"] == "finished"
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 4

    assert main(["evaluate", str(out / "model.gfm"), "--data", "digits"]) == 0
    evaluated = capsys.readouterr().out
    acc = float(evaluated.split("accuracy ")[1].split()[0].rstrip(","))
    assert abs(acc - results["test"]["accuracy"]) < 1e-4

    import gradfit
    (_, _), (x_test, _) = gradfit.datasets.digits()
    np.save(tmp_path / "x.npy", x_test[:5])
    assert main(["predict", str(out / "model.gfm"), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].split(",")[:2] == ["class", "p0"] and len(lines) == 6
    probs = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)[:, 1:]
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)


def test_resume_with_backup_finishes_the_same_run(tmp_path, capsys):
    args = ["train", "--epochs", "2", "--hidden", "16", "--verbose", "0", "--backup", "--seed", "3"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert not (tmp_path / "a" / "backup").exists(), "the backup is removed once training ends"


@pytest.mark.parametrize("argv, message", [
    (["train", "--hidden", "10,x"], "--hidden must be comma-separated"),
    (["train", "--data", "nope"], "unknown dataset 'nope'"),
    (["train", "--optimizer", "adamx"], "adamx"),
    (["train", "--batch-size", "0", "--epochs", "1"], "argument --batch-size: must be an integer >= 1 or auto, got '0'"),
    (["train", "--activation", "swish"], "invalid choice: 'swish'"),
    (["evaluate", "/nonexistent/model.gfm"], "no such gradfit file"),
])
def test_bad_arguments_are_clear_errors(argv, message, capsys, tmp_path):
    code = main(argv + (["--out", str(tmp_path / "r"), "--verbose", "0"] if argv[0] == "train" else []))
    assert code == 2
    assert message in capsys.readouterr().err


def test_optimizer_arguments_reach_the_optimizer(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--verbose", "0", "--out", str(out),
                 "--optimizer", "adam", "--lr", "0.002", "--opt-arg", "beta_2=0.99",
                 "--opt-arg", "amsgrad=true"]) == 0
    config = json.loads((out / "config.json").read_text())["optimizer_config"]["config"]
    assert config["beta_2"] == 0.99 and config["amsgrad"] is True and config["learning_rate"] == 0.002
    assert main(["train", "--epochs", "1", "--out", str(out), "--verbose", "0", "--overwrite",
                 "--opt-arg", "beta3=1"]) == 2
    err = capsys.readouterr().err
    assert "--opt-arg 'beta3=1': expected NAME=VALUE with NAME one of learning_rate" in err
    out = tmp_path / "flags"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--verbose", "0", "--out", str(out),
                 "--optimizer", "amsgrad", "--beta-2", "0.99", "--epsilon-hat", "--epsilon", "1e-7",
                 "--no-fused"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["optimizer_config"] == {"class_name": "Adam", "config": gradfit.optimizers.Adam(
        beta_2=0.99, amsgrad=True, epsilon_hat=True, epsilon=1e-7, fused=False).get_config()}
    assert "momentum" not in saved and saved["beta_2"] == 0.99     # flags not given: not recorded


@pytest.mark.parametrize("init, activation, bound", [
    ("auto", "relu", lambda fan_in, fan_out: (6 / fan_in) ** 0.5),            # he_uniform
    ("auto", "tanh", lambda fan_in, fan_out: (6 / (fan_in + fan_out)) ** 0.5),  # glorot_uniform
    ("glorot_uniform", "relu", lambda fan_in, fan_out: (6 / (fan_in + fan_out)) ** 0.5)])
def test_init_sets_the_hidden_layers_weights(init, activation, bound, tmp_path):
    out = tmp_path / "init"
    assert main(["train", "--epochs", "1", "--hidden", "300", "--verbose", "0", "--lr", "1e-12",
                 "--activation", activation, "--init", init, "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["init"] == init
    kernel = gradfit.load_model(str(out / "model.gfm")).get_weights()[0]          # 64 x 300
    limit = bound(*kernel.shape)
    assert np.abs(kernel).max() <= limit * 1.0001
    assert np.abs(kernel).max() > 0.9 * limit          # drawn up to its own bound, not a smaller one


def test_every_declared_hyperparameter_is_a_flag_with_its_doc():
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    flags = {s: a for a in parser._actions for s in a.option_strings}
    for cls in gradfit.optimizers.OPTIMIZERS.values():
        for h in cls.hyperparameters:
            action = flags["--" + h.name.replace("_", "-")]
            assert action.dest == h.name and action.default is None and h.doc in action.help
            if isinstance(h.default, bool):
                assert "--no-" + h.name.replace("_", "-") in flags
    assert flags["--lr"] is flags["--learning-rate"]


def test_a_flag_the_optimizer_does_not_take_is_refused_before_any_output(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["train", "--optimizer", "adam", "--momentum", "0.9", "--out", str(out),
                 "--verbose", "0"]) == 2
    captured = capsys.readouterr()
    assert "adam takes: --learning-rate, --beta-1, --beta-2, --epsilon, --amsgrad" in captured.err
    assert "(given: --momentum)" in captured.err and captured.out == "" and not out.exists()


def test_backup_without_out_is_refused_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--backup", "--verbose", "0"]) == 2
    assert "--backup must be given with --out" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(command):
    proc = subprocess.run([sys.executable, "-m", "gradfit", command, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: gradfit {command}")


def test_top_level_help_lists_every_subcommand():
    proc = subprocess.run([sys.executable, "-m", "gradfit", "--help"], capture_output=True, text=True)
    for name in SUBCOMMANDS:
        assert name in proc.stdout


def test_memory_command_reports_the_lectures_numbers(capsys):
    assert main(["memory", "100", "500", "1000", "2000", "1"]) == 0
    out = capsys.readouterr().out
    assert "2,555,501" in out and "52.2 TB" in out
