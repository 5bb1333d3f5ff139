"""Knowledge distillation: the loss pulls a student toward its teachers, an exported ONNX model
teaches as its checkpoint does, cached targets are the teachers' on each image and its mirror
and teach as online ones do, clean distillation shows the teachers each view before its
damage, and a distilled run trains, resumes exactly and rejects bad settings in one line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from fercnn.models import create_model
from fercnn.training.augment import augment_geometry
from fercnn.training.config import TrainConfig
from fercnn.training.distill import (
    Teachers,
    cached_targets,
    distillation_loss,
    load_teachers,
    stored_targets,
)
from fercnn.training.distributed import Ranks
from fercnn.training.loop import train_one_epoch, training_views
from fercnn.training.tensors import TrainingSet

from .conftest import assert_one_line_error, csv_text, make_rows, run_cli
from .test_train import kill_after_first_checkpoint, write_config


def test_the_loss_is_zero_only_when_the_student_agrees():
    logits = torch.randn(8, 7)
    agreeing = torch.softmax(logits / 3.0, 1)
    assert distillation_loss(logits, agreeing, 3.0).item() == pytest.approx(0, abs=1e-5)
    assert distillation_loss(torch.randn(8, 7), agreeing, 3.0).item() > 0.01


def test_training_on_the_loss_alone_moves_the_student_to_the_teacher():
    torch.manual_seed(0)
    teachers = Teachers([create_model("shallow")])
    student = create_model("shallow")
    x = torch.rand(32, 1, 48, 48)
    targets = teachers.soft_targets(x, 2.0, bf16=False)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = distillation_loss(student(x), targets, 2.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert not any(p.requires_grad for p in teachers.parameters())
    teachers.train()
    assert not teachers.training  # a teacher never switches to training mode


def test_cached_targets_are_the_teachers_mean_over_each_image_and_its_mirror():
    torch.manual_seed(0)
    teachers = Teachers([create_model("shallow"), create_model("shallow")])
    images = torch.randint(0, 256, (10, 1, 48, 48), dtype=torch.uint8)
    x = images.float() / 255
    expected = (teachers.soft_targets(x, 2.0, False)
                + teachers.soft_targets(x.flip(3), 2.0, False)) / 2
    cached = cached_targets(teachers, images, 2.0, bf16=False, batch=4)
    torch.testing.assert_close(cached, expected, atol=1e-5, rtol=0)
    mirrored = cached_targets(teachers, images.flip(3), 2.0, bf16=False)
    torch.testing.assert_close(mirrored, cached, atol=1e-5, rtol=0)  # one target per face


def test_stored_targets_are_read_back_until_a_teacher_or_the_images_change(monkeypatch):
    """A second student of the same teachers reads their targets from fercnn's cache instead
    of running them; changed weights or images make new ones."""
    torch.manual_seed(0)
    teachers = Teachers([create_model("shallow")])
    images = torch.randint(0, 256, (12, 1, 48, 48), dtype=torch.uint8)
    first, read = stored_targets(teachers, images, 2.0, bf16=False)
    assert not read
    torch.testing.assert_close(first, cached_targets(teachers, images, 2.0, bf16=False))
    calls = []
    monkeypatch.setattr(Teachers, "soft_targets", lambda *a: calls.append(1))
    again, read = stored_targets(teachers, images, 2.0, bf16=False)
    assert read and not calls
    torch.testing.assert_close(again, first, atol=0, rtol=0)
    monkeypatch.undo()
    with torch.no_grad():
        next(teachers.parameters()).add_(0.5)
    changed, read = stored_targets(teachers, images, 2.0, bf16=False)
    assert not read and (changed - first).abs().max() > 1e-4
    _, read = stored_targets(teachers, images.flip(3).contiguous(), 2.0, bf16=False)
    assert not read
    _, read = stored_targets(teachers, images, 3.0, bf16=False)
    assert not read


def test_epochs_on_cached_targets_move_the_student_to_its_teachers():
    torch.manual_seed(0)
    teachers = Teachers([create_model("shallow")])
    images = torch.randint(0, 256, (64, 1, 48, 48), dtype=torch.uint8)
    taught = cached_targets(teachers, images, 2.0, bf16=False)
    data = TrainingSet(images, torch.randint(0, 7, (64,)), taught=taught)
    config = TrainConfig(model="shallow", batch_size=16, teachers=["cached"], distill_cached=True,
                         distill_weight=1.0, distill_temperature=2.0, hflip=True, mixup=0.2)
    student = create_model("shallow")
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)

    def gap() -> float:
        student.eval()
        with torch.no_grad():
            return distillation_loss(student(images.float() / 255), taught, 2.0).item()

    before = gap()
    for epoch in range(6):
        train_one_epoch(student, data, config, optimizer, None, None,
                        torch.Generator().manual_seed(epoch), False, Ranks(), "epoch")
    assert gap() < 0.5 * before


def test_clean_distillation_shows_teachers_the_view_before_its_damage():
    """With distill_clean the student's views are unchanged, and the teachers get the same
    flips and rotations without the photo degradations and erasing."""
    images = torch.randint(0, 256, (16, 1, 48, 48), dtype=torch.uint8)
    settings = {"hflip": True, "rotate": 10, "shift": 4, "photo": 1.0, "erase": 1.0,
                "teachers": ["x"]}
    clean = TrainConfig(**settings, distill_clean=True)
    seen, shown = training_views(images, clean, torch.Generator().manual_seed(3))
    plain, nothing = training_views(images, TrainConfig(**settings),
                                    torch.Generator().manual_seed(3))
    assert nothing is None and torch.equal(seen, plain)
    geometry = augment_geometry(images.float() / 255, clean, torch.Generator().manual_seed(3))
    assert torch.equal(shown, geometry)
    assert not torch.equal(geometry.flip(3), images.float() / 255)  # moved, not only flipped
    assert (seen - shown).abs().amax(dim=(1, 2, 3)).min() > 0.05  # every view was damaged


def test_a_distilled_run_trains_and_resumes_exactly(tmp_path):
    data = tmp_path / "fer.csv"
    data.write_text(csv_text(make_rows({"Training": 300, "PublicTest": 70, "PrivateTest": 70})))
    teacher_config = write_config(tmp_path, epochs=1, name="teacher")
    result = run_cli("train", "--config", teacher_config, "--data", data,
                     "--out", tmp_path / "teacher")
    assert result.returncode == 0, result.stderr
    config = write_config(tmp_path, epochs=3, name="student", extra=(
        f"teachers: ['{tmp_path / 'teacher'}']\ndistill_weight: 0.7\nhflip: true\n"))
    common = ["--config", str(config), "--data", str(data), "--precision", "fp32"]
    result = run_cli("train", *common, "--out", tmp_path / "straight")
    assert result.returncode == 0, result.stderr
    assert "distilling from 1 teacher" in result.stdout
    kill_after_first_checkpoint(common, tmp_path / "killed")
    again = run_cli("train", *common, "--out", tmp_path / "killed", "--resume")
    assert again.returncode == 0, again.stderr

    def losses(run: Path) -> list[str]:
        with open(run / "history.csv", newline="") as f:
            return [row["train_loss"] for row in csv.DictReader(f)]

    assert losses(tmp_path / "killed") == losses(tmp_path / "straight")


def test_an_exported_model_teaches_as_its_checkpoint_does(tmp_path):
    data = tmp_path / "fer.csv"
    data.write_text(csv_text(make_rows({"Training": 120, "PublicTest": 30, "PrivateTest": 30})))
    config = write_config(tmp_path, epochs=1, name="teacher")
    trained = run_cli("train", "--config", config, "--data", data, "--out", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    exported = run_cli("export", tmp_path / "run", "--out", tmp_path / "teacher.onnx")
    assert exported.returncode == 0, exported.stderr
    torch.manual_seed(0)
    x = torch.rand(16, 1, 48, 48)
    device = torch.device("cpu")
    from_checkpoint = load_teachers([str(tmp_path / "run")], device).soft_targets(x, 4.0, False)
    from_onnx = load_teachers([str(tmp_path / "teacher.onnx")], device).soft_targets(x, 4.0,
                                                                                    False)
    torch.testing.assert_close(from_onnx, from_checkpoint, atol=1e-4, rtol=0)
    bundled = load_teachers(["default"], device).soft_targets(x, 4.0, False)
    assert bundled.shape == (16, 7)
    torch.testing.assert_close(bundled.sum(1), torch.ones(16))
    assert not torch.allclose(bundled, from_onnx, atol=1e-3)  # a different teacher


def test_a_run_distils_from_a_bundled_model(tmp_path):
    data = tmp_path / "fer.csv"
    data.write_text(csv_text(make_rows({"Training": 120, "PublicTest": 30, "PrivateTest": 30})))
    config = write_config(tmp_path, epochs=1, name="student", extra="teachers: [default]\n")
    result = run_cli("train", "--config", config, "--data", data, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "distilling from 1 teacher" in result.stdout
    cached = write_config(tmp_path, epochs=1, name="cached",
                          extra="teachers: [default]\ndistill_cached: true\n")
    result = run_cli("train", "--config", cached, "--data", data, "--out", tmp_path / "cached")
    assert result.returncode == 0, result.stderr
    assert "targets cached for 120 images" in result.stdout
    clean = write_config(tmp_path, epochs=1, name="clean",
                         extra="teachers: [default]\ndistill_clean: true\nphoto: 0.5\n")
    result = run_cli("train", "--config", clean, "--data", data, "--out", tmp_path / "clean")
    assert result.returncode == 0, result.stderr
    assert "distilling from 1 teacher(s) (before the photo degradations)" in result.stdout


def test_distillation_mistakes_are_one_line(tmp_path):
    data = tmp_path / "fer.csv"
    data.write_text(csv_text(make_rows({"Training": 60, "PublicTest": 20, "PrivateTest": 20})))
    missing = write_config(tmp_path, epochs=1, name="missing",
                           extra=f"teachers: ['{tmp_path / 'no-such-run'}']\n")
    assert_one_line_error(run_cli("train", "--config", missing, "--data", data,
                                  "--out", tmp_path / "a"), "no-such-run")
    not_a_list = write_config(tmp_path, epochs=1, name="string", extra="teachers: 7\n")
    assert_one_line_error(run_cli("train", "--config", not_a_list, "--data", data,
                                  "--out", tmp_path / "b"), "teachers")
    no_model = write_config(tmp_path, epochs=1, name="onnx",
                            extra=f"teachers: ['{tmp_path / 'nothing.onnx'}']\n")
    assert_one_line_error(run_cli("train", "--config", no_model, "--data", data,
                                  "--out", tmp_path / "d"), "nothing.onnx: no such model file")
    weight = write_config(tmp_path, epochs=1, name="weight",
                          extra="teachers: ['x']\ndistill_weight: 1.5\n")
    assert_one_line_error(run_cli("train", "--config", weight, "--data", data,
                                  "--out", tmp_path / "c"), "distill_weight")
    alone = write_config(tmp_path, epochs=1, name="alone", extra="distill_cached: true\n")
    assert_one_line_error(run_cli("train", "--config", alone, "--data", data,
                                  "--out", tmp_path / "e"), "distill_cached")
    both = write_config(tmp_path, epochs=1, name="both", extra=(
        "teachers: [default]\ndistill_cached: true\ndistill_clean: true\n"))
    assert_one_line_error(run_cli("train", "--config", both, "--data", data,
                                  "--out", tmp_path / "f"), "distill_clean")
