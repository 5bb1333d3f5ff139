"""The training engine on small synthetic data: outputs, exact resume, atomic checkpoints."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fercnn.training import checkpoint as checkpoint_module
from fercnn.training.checkpoint import load_checkpoint, save_atomic

from .conftest import REPO, assert_one_line_error, csv_text, make_rows, run_cli

TINY = """model: shallow
epochs: {epochs}
batch_size: 32
lr: 0.001
"""


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("train") / "fer.csv"
    path.write_text(csv_text(make_rows({"Training": 600, "PublicTest": 70, "PrivateTest": 70})))
    return path


def write_config(folder: Path, epochs: int, name: str = "tiny", extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(TINY.format(epochs=epochs) + extra)
    return path


def history_rows(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_train_leaves_history_curves_and_checkpoints(tmp_path, train_csv):
    config = write_config(tmp_path, epochs=2, extra="hflip: true\nshift: 3\n")
    result = run_cli("train", "--config", config, "--data", train_csv, "--limit", "200",
                     "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    for name in ("history.csv", "curves.png", "best.pt", "last.pt", "config.yaml",
                 "metrics.json"):
        assert (run / name).exists(), name
    rows = history_rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                            "seconds"}
    state = load_checkpoint(run)
    assert state["model_name"] == "shallow" and state["config"]["limit"] == 200
    assert {"optimizer", "rng", "history", "epoch"} <= set(state)


def test_train_refuses_to_overwrite_a_run_without_resume(tmp_path, train_csv):
    config = write_config(tmp_path, epochs=1)
    args = ("train", "--config", config, "--data", train_csv, "--limit", "64",
            "--out", tmp_path / "run")
    assert run_cli(*args).returncode == 0
    assert_one_line_error(run_cli(*args), "--resume")


def test_config_mistakes_are_one_line(tmp_path, train_csv):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: shallow\nlearning_rate: 0.1\n")
    assert_one_line_error(run_cli("train", "--config", bad, "--data", train_csv),
                          "learning_rate")
    wrong_model = tmp_path / "wrong.yaml"
    wrong_model.write_text("model: resnet9000\n")
    assert_one_line_error(run_cli("train", "--config", wrong_model, "--data", train_csv),
                          "resnet9000")
    assert_one_line_error(run_cli("train", "--config", tmp_path / "missing.yaml"),
                          "missing.yaml")


def test_init_starts_from_a_runs_weights_and_refuses_another_network(tmp_path, train_csv):
    first = tmp_path / "first"
    trained = run_cli("train", "--config", write_config(tmp_path, epochs=1, name="first"),
                      "--data", train_csv, "--limit", "200", "--out", first)
    assert trained.returncode == 0, trained.stderr
    # lr 0 leaves the weights where they started: they must be the first run's, not the seed's
    frozen = tmp_path / "frozen.yaml"
    frozen.write_text(f"model: shallow\nepochs: 1\nbatch_size: 32\nlr: 0.0\ninit: {first}\n")
    result = run_cli("train", "--config", frozen, "--data", train_csv, "--limit", "200",
                     "--out", tmp_path / "frozen")
    assert result.returncode == 0, result.stderr
    assert f"starting from {first}" in result.stdout
    start, end = load_checkpoint(first)["model"], load_checkpoint(tmp_path / "frozen")["model"]
    assert start.keys() == end.keys()
    for name in start:
        assert torch.equal(start[name], end[name]), name

    other = tmp_path / "other.yaml"
    other.write_text(f"model: improved\nepochs: 1\ninit: {first}\n")
    assert_one_line_error(run_cli("train", "--config", other, "--data", train_csv,
                                  "--out", tmp_path / "other"), "init", "'shallow'")
    missing = tmp_path / "missing.yaml"
    missing.write_text(f"model: shallow\nepochs: 1\ninit: {tmp_path / 'nowhere'}\n")
    assert_one_line_error(run_cli("train", "--config", missing, "--data", train_csv,
                                  "--out", tmp_path / "missing"), "init", "nowhere")


def _comparable(rows: list[dict]) -> list[tuple]:
    return [(r["epoch"], float(r["train_loss"]), float(r["train_acc"]), float(r["val_loss"]),
             float(r["val_acc"]), r["lr"]) for r in rows]


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, train_csv):
    epochs = 4
    config = write_config(tmp_path, epochs=epochs, extra="hflip: true\nshift: 2\n"
                          "scheduler: cosine\nwarmup_epochs: 1\n")
    common = ["--config", str(config), "--data", str(train_csv), "--precision", "fp32"]
    straight = tmp_path / "straight"
    assert run_cli("train", *common, "--out", straight).returncode == 0

    killed = tmp_path / "killed"
    kill_after_first_checkpoint(common, killed, delay=0.3)  # into the second epoch
    assert load_checkpoint(killed / "last.pt")["epoch"] < epochs, "the run ended before the kill"
    load_checkpoint(killed / "best.pt")  # never half-written

    resumed = run_cli("train", *common, "--out", killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    assert _comparable(history_rows(killed)) == _comparable(history_rows(straight))
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(killed / "last.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_plan_epochs_fits_the_budget_and_never_exceeds_the_config():
    from fercnn.training.budget import plan_epochs

    assert plan_epochs(10, spent=60, epoch_seconds=30, epochs=100) == 19  # 1 + 540 s / 30 s
    assert plan_epochs(10, spent=60, epoch_seconds=30, epochs=12) == 12
    assert plan_epochs(0.5, spent=60, epoch_seconds=30, epochs=100) == 1  # over budget already
    assert plan_epochs(10, spent=80, epoch_seconds=20, epochs=100, done=2) == 28  # 2 + 520 / 20
    assert plan_epochs(1, spent=80, epoch_seconds=20, epochs=100, done=2) == 2


def test_a_minutes_budget_fits_the_schedule_and_resumes_on_its_plan(tmp_path, train_csv,
                                                                    monkeypatch):
    """The plan (3 of 6 epochs after epochs 1 and 2, forced here: real ones depend on the
    clock) refits the cosine to end at zero and warms the EMA up; config.yaml records both and
    reproduces the run without a budget, and a run killed after epoch 2 resumes on the plan,
    without --minutes, to exactly the uninterrupted run."""
    from fercnn import plots
    from fercnn.training import budget
    from fercnn.training import loop as train
    from fercnn.training.config import load_config

    config = load_config(write_config(tmp_path, epochs=6, extra=(
        f"data: {train_csv}\nscheduler: cosine\nwarmup_epochs: 2\nprecision: fp32\n"
        "optimizer: sgd\nlr: 0.05\nhflip: true\nema: 0.99\n")))
    monkeypatch.setattr(budget, "plan_epochs", lambda minutes, spent, seconds, epochs, done: 3)
    straight = tmp_path / "straight"
    metrics = train.train(config, straight, minutes=1.0)
    assert metrics["epochs_run"] == 3 and metrics["budget_minutes"] == 1.0
    saved = load_config(straight / "config.yaml")
    assert (saved.epochs, saved.warmup_epochs, saved.ema_warmup) == (3, 2, True)
    again = tmp_path / "again"
    train.train(saved, again)  # the recorded config alone, no budget
    assert _comparable(history_rows(again)) == _comparable(history_rows(straight))
    last = load_checkpoint(straight / "last.pt")
    assert last["optimizer"]["param_groups"][0]["lr"] < 1e-9  # annealed to zero at the end
    assert [float(r["lr"]) for r in history_rows(straight)][:2] == pytest.approx(
        [0.05 / 2 / 19, 0.05 * 20 / 38])  # the warm-up, 19 steps an epoch (600 / 32)

    calls = []

    def killed_after_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(plots, "learning_curves", killed_after_epoch_2)
    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        train.train(config, killed, minutes=1.0)
    monkeypatch.undo()
    assert load_checkpoint(killed / "last.pt")["epoch"] == 2
    train.train(config, killed, resume=True)  # the config's 6 epochs: the plan's 3 win
    assert _comparable(history_rows(killed)) == _comparable(history_rows(straight))
    for key, value in last["model"].items():
        assert torch.equal(value, load_checkpoint(killed / "last.pt")["model"][key]), key


def test_the_pace_of_a_plan_is_the_median_epoch_after_the_first():
    from fercnn.training.budget import pace

    assert pace([90.0]) == 90.0  # the first epoch alone
    assert pace([90.0, 60.0]) == 60.0
    assert pace([90.0, 120.0, 60.0]) == 90.0  # epoch 2 slowed by another job: the mean so far
    assert pace([90.0, 120.0, 60.0, 61.0]) == 61.0  # ... and forgotten once outvoted


def test_the_second_epoch_replans_from_the_config_not_from_the_first_plan(
        tmp_path, train_csv, monkeypatch):
    """A first plan of 2 epochs shrinks the warm-up to 1; the second plan (4) restores it, and
    the plans after epochs 3 and 4 keep it."""
    from fercnn.training import budget
    from fercnn.training import loop as train
    from fercnn.training.config import load_config

    config = load_config(write_config(tmp_path, epochs=6, extra=(
        f"data: {train_csv}\nscheduler: cosine\nwarmup_epochs: 2\nprecision: fp32\n")))
    plans, planned_after = iter([2, 4, 4, 4]), []

    def plan(minutes, spent, epoch_seconds, epochs, done):
        planned_after.append(done)
        return next(plans)

    monkeypatch.setattr(budget, "plan_epochs", plan)
    assert train.train(config, tmp_path / "run", minutes=1.0)["epochs_run"] == 4
    assert planned_after == [1, 2, 3, 4]  # after each of the four epochs, from all so far
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert (saved.epochs, saved.warmup_epochs, saved.ema_warmup) == (4, 2, False)  # no EMA
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["budget"] == {"minutes": 1.0, "epochs": 4}
    assert last["optimizer"]["param_groups"][0]["lr"] < 1e-9


def test_minutes_must_be_positive(tmp_path, train_csv):
    config = write_config(tmp_path, epochs=1)
    result = run_cli("train", "--config", config, "--data", train_csv, "--minutes", "0")
    assert result.returncode == 2 and "--minutes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_save_that_dies_midway_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    save_atomic({"epoch": 1, "weights": torch.ones(1000)}, path)

    def dying_save(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # as if killed during the write

    monkeypatch.setattr(checkpoint_module.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"epoch": 2, "weights": torch.zeros(1000)}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert list(tmp_path.iterdir()) == [path], "a temporary file was left behind"


def test_evaluate_json_and_confusion_matrix(tmp_path, train_csv):
    config = write_config(tmp_path, epochs=1)
    run = tmp_path / "run"
    assert run_cli("train", "--config", config, "--data", train_csv, "--limit", "128",
                   "--out", run).returncode == 0
    result = run_cli("evaluate", run, "--json", "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["images"] == 70 and metrics["clean_images"] == 70
    assert set(metrics["per_class"]) == {"angry", "disgust", "fear", "happy", "sad",
                                         "surprise", "neutral"}
    assert (tmp_path / "eval" / "confusion-PublicTest.png").exists()
    assert_one_line_error(run_cli("evaluate", tmp_path / "nowhere"), "nowhere")


def test_compare_trains_tabulates_and_reuses(tmp_path, train_csv):
    a = write_config(tmp_path, epochs=2, name="a", extra="limit: 96\n")
    b = write_config(tmp_path, epochs=1, name="b", extra="limit: 96\nmodel: improved\n")
    out = tmp_path / "cmp"
    first = run_cli("compare", a, b, "--data", train_csv, "--out", out)
    assert first.returncode == 0, first.stderr
    with open(out / "comparison.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["model", "params", "train_loss", "val_loss", "train_acc",
                                 "val_acc", "test_acc", "clean_test_acc", "epoch_seconds"]
    assert [r["model"] for r in rows] == ["a", "b"]
    assert all(0 <= float(r["test_acc"]) <= 1 for r in rows)
    for name in ("comparison.md", "validation_curves.png", "a/curves.png",
                 "a/confusion-PrivateTest.png", "b/history.csv"):
        assert (out / name).exists(), name
    again = run_cli("compare", a, b, "--data", train_csv, "--out", out)
    assert again.returncode == 0
    assert again.stdout.count("reusing the finished run") == 2


def write_ferplus_votes(path: Path, rows) -> Path:
    """FER+ votes agreeing with each row's label (8 votes) plus 2 for neutral."""
    columns = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    ours = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    to_column = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
                 "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}
    lines = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
             "unknown,NF"]
    for i, (label, _, usage) in enumerate(rows):
        votes = dict.fromkeys(columns, 0)
        votes[to_column[ours[label]]] += 8
        votes["neutral"] += 2
        lines.append(f"{usage},fer{i:07d}.png," + ",".join(str(votes[c]) for c in columns)
                     + ",0,0,0")
    path.write_text("\n".join(lines) + "\n")
    return path


def kill_after_first_checkpoint(args: list[str], run: Path, delay: float = 0.0) -> None:
    """Start ``fercnn train ARGS --out RUN`` and SIGKILL it ``delay`` s after last.pt exists."""
    process = subprocess.Popen([sys.executable, "-m", "fercnn", "train", *args, "--out",
                                str(run)], cwd=REPO, env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_ema_mixup_and_ferplus_soft_labels_train_and_resume_exactly(tmp_path):
    rows = make_rows({"Training": 300, "PublicTest": 70, "PrivateTest": 70})
    data = tmp_path / "fer.csv"
    data.write_text(csv_text(rows))
    ferplus = write_ferplus_votes(tmp_path / "fer2013new.csv", rows)
    config = write_config(tmp_path, epochs=3, extra=f"ema: 0.9\nmixup: 0.4\nhflip: true\n"
                          f"ferplus: {ferplus}\nsoft_labels: true\n")
    common = ["--config", str(config), "--data", str(data), "--precision", "fp32"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    result = run_cli("train", *common, "--out", straight)
    assert result.returncode == 0, result.stderr
    state = load_checkpoint(straight / "last.pt")
    assert {"ema", "train_model"} <= set(state)
    assert not all(torch.equal(state["model"][k], state["train_model"][k])
                   for k in state["model"] if k.endswith("weight"))  # EMA differs from raw
    scored = json.loads(run_cli("evaluate", straight, "--json").stdout)
    assert scored["labels"] == "FER+ plurality" and scored["images"] == 70

    kill_after_first_checkpoint(common, killed)
    again = run_cli("train", *common, "--out", killed, "--resume")
    assert again.returncode == 0, again.stderr
    assert _comparable(history_rows(killed)) == _comparable(history_rows(straight))


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_decay_warm_up_follows_the_formula_and_survives_a_resume(warmup):
    """A weight at 0 jumps to 1 after the first update: the average's value after k updates is
    1 - prod(decay_n), with decay_n = min(0.999, (1 + n) / (10 + n)) under the warm-up."""
    from fercnn.training.config import TrainConfig
    from fercnn.training.optim import make_ema

    config = TrainConfig(ema=0.999, ema_warmup=warmup)
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = make_ema(config, model)
    ema.update_parameters(model)  # the first update copies the weights
    model.weight.data.fill_(1.0)
    for _ in range(50):
        ema.update_parameters(model)
    resumed = make_ema(config, torch.nn.Linear(1, 1, bias=False))
    resumed.load_state_dict(ema.state_dict())
    for average in (ema, resumed):
        for _ in range(50):
            average.update_parameters(model)
    decays = [min(0.999, (1 + n) / (10 + n)) if warmup else 0.999 for n in range(1, 101)]
    expected = 1 - math.prod(decays)
    for average in (ema, resumed):
        assert average.module.weight.item() == pytest.approx(expected, rel=1e-5)
    assert (expected > 0.9) if warmup else (expected < 0.1)  # the initial weights forgotten


class _Brightness(torch.nn.Module):
    """Class 1 for an image brighter than mid-grey, else class 0: right about any blend of a
    black class-0 and a white class-1 image exactly when it names the dominant one."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(10.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.float().mean((1, 2, 3)) - 0.5
        return torch.stack([-m, m, *[torch.zeros_like(m)] * 5], 1) * self.gain


def test_training_accuracy_under_mixup_counts_the_dominant_label():
    from fercnn.training.config import TrainConfig
    from fercnn.training.distributed import Ranks
    from fercnn.training.loop import train_one_epoch
    from fercnn.training.tensors import TrainingSet

    labels = torch.arange(256) % 2
    images = (labels * 255).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 48, 48)
    model = _Brightness()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    _, accuracy = train_one_epoch(
        model, TrainingSet(images.contiguous(), labels), TrainConfig(batch_size=16, mixup=0.4),
        optimizer, None, None, torch.Generator().manual_seed(0), False, Ranks(), "test")
    assert accuracy == 1.0


def test_soft_labels_without_ferplus_is_one_line(tmp_path, train_csv):
    config = write_config(tmp_path, epochs=1, extra="soft_labels: true\n")
    assert_one_line_error(run_cli("train", "--config", config, "--data", train_csv),
                          "ferplus")


def test_crowd_targets_blend_the_label_with_the_vote_shares(tmp_path):
    from fercnn.data import load_dataset
    from fercnn.training.tensors import crowd_targets

    rows = make_rows({"Training": 40, "PublicTest": 10, "PrivateTest": 10})
    data = tmp_path / "fer.csv"
    data.write_text(csv_text(rows))
    votes = write_ferplus_votes(tmp_path / "fer2013new.csv", rows)
    lines = votes.read_text().splitlines()  # the first image: all votes unknown, no emotion
    lines[1] = ",".join(lines[1].split(",")[:2] + ["0"] * 8 + ["10", "0"])
    votes.write_text("\n".join(lines) + "\n")
    dataset = load_dataset(data)
    targets = crowd_targets(dataset, str(votes), 0.3)
    train = dataset.split("Training")
    assert targets.shape == (len(train), 7)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    assert targets[0, train.labels[0]] == 1.0  # no emotion votes: the one-hot label
    neutral = 6
    for target, label in zip(targets[1:], train.labels[1:], strict=True):
        expected = np.zeros(7)
        expected[label] += 0.7 + 0.3 * 0.8  # 8 of the 10 votes agree with the label
        expected[neutral] += 0.3 * 0.2
        np.testing.assert_allclose(target, expected, atol=1e-6)


def test_crowd_votes_train_on_blended_targets_and_validate_on_fer2013_labels(tmp_path,
                                                                              train_csv):
    rows = make_rows({"Training": 600, "PublicTest": 70, "PrivateTest": 70})
    votes = write_ferplus_votes(tmp_path / "fer2013new.csv", rows)
    config = write_config(tmp_path, epochs=1, extra="crowd_votes: elsewhere/fer2013new.csv\n")
    run = tmp_path / "run"
    common = ("train", "--config", config, "--data", train_csv, "--out", run)
    assert_one_line_error(run_cli(*common), "elsewhere/fer2013new.csv: no such file")
    result = run_cli(*common, "--ferplus", votes)  # --ferplus names the file to blend
    assert result.returncode == 0, result.stderr
    scored = json.loads(run_cli("evaluate", run, "--data", train_csv, "--json").stdout)
    assert scored["labels"] == "FER-2013" and scored["images"] == 70


@pytest.mark.parametrize("extra, needle", [
    ("crowd_votes: votes.csv\nferplus: votes.csv\n", "set one of them"),
    ("crowd_weight: 1.5\n", "crowd_weight"),
])
def test_crowd_votes_mistakes_are_one_line(tmp_path, train_csv, extra, needle):
    config = write_config(tmp_path, epochs=1, extra=extra)
    assert_one_line_error(run_cli("train", "--config", config, "--data", train_csv), needle)


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "configs").glob("*.yaml")
                                         if not p.stem.endswith("-space")),  # tune's spaces
                         ids=lambda p: p.stem)
def test_every_committed_config_loads_and_names_a_model(path):
    from fercnn.models import model_names
    from fercnn.training.config import load_config

    config = load_config(path)
    assert config.model in model_names()
    for votes in (config.ferplus, config.crowd_votes):
        if votes:  # relative to the repository root, where the README runs commands
            assert votes.endswith("fer2013new.csv")
