"""Knowledge distillation: a small student learns the softened probabilities of bigger trained
models (an ensemble averages them) beside the true labels (Hinton et al. 2015).

The teachers see exactly the student's augmented (and mixed) batch, so their targets follow
every augmentation; they run without gradients, under the student's precision. With
``distill_cached`` they run once instead, before training, on each clean training image and
its mirror (averaged), and every augmented view of the image learns that target: the teachers
took 102 of a tiny epoch's 132 s on an AVX2 host, but a target made for the clean face
teaches its augmented views less (1.8 points of PublicTest), though photos gain (wild-dev +4
points: a degraded view learns its clean face's target; configs/tiny-cached.yaml). A teacher
is a run folder or checkpoint, or an exported ONNX model (a path, or a bundled one such as
``accurate``), so a recipe can distil from the models that ship with the package.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from ..data import cache
from ..errors import FercnnError
from .checkpoint import load_checkpoint, model_from_checkpoint


class OnnxTeacher(nn.Module):
    """An exported model run by onnxruntime on the CPU. It returns log-probabilities, which
    soften at a temperature exactly as logits do (softmax is blind to a constant shift), and
    for an exported ensemble they are the log of its averaged probabilities."""

    def __init__(self, model: str) -> None:
        super().__init__()
        from ..recognition import Recognizer

        # the model's own output on 48x48 faces: no views, no photo reader
        self.recognizer = Recognizer(model, tta="none", photo_reader=False)
        expected = {"scale": 1 / 255, "mean": 0.0, "std": 1.0}
        given = self.recognizer.metadata.get("input", expected)
        if any(abs(float(given.get(k, v)) - v) > 1e-9 for k, v in expected.items()):
            raise FercnnError(f"{model}: teacher expects inputs scaled {given}, not [0, 1] gray")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        session, name = self.recognizer.session, self.recognizer.input_name
        batch = x.detach().float().cpu().contiguous().numpy()
        probabilities = torch.from_numpy(session.run(None, {name: batch})[0]).to(x.device)
        return probabilities.clamp_min(1e-12).log()


class Teachers(nn.Module):
    """Frozen trained models whose probabilities at a temperature are averaged."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Teachers:  # teachers stay in eval mode
        return super().train(False)

    @torch.no_grad()
    def soft_targets(self, x: torch.Tensor, temperature: float, bf16: bool) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = [model(x).float() for model in self.models]
        return torch.stack([F.softmax(z / temperature, 1) for z in logits]).mean(0)


def load_teachers(paths: list[str], device: torch.device) -> Teachers:
    """Run folders, checkpoints or ONNX models as one frozen teacher ensemble on ``device``."""
    from ..recognition import is_onnx

    models = [OnnxTeacher(p) if is_onnx(p) else model_from_checkpoint(load_checkpoint(p))
              for p in paths]
    return Teachers(models).to(device, memory_format=torch.channels_last)


def distillation_loss(student_logits: torch.Tensor, targets: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """KL(targets || student) at ``temperature``, times T^2 so its gradients keep the scale of
    the label loss whatever the temperature."""
    log_student = F.log_softmax(student_logits.float() / temperature, 1)
    return F.kl_div(log_student, targets, reduction="batchmean") * temperature ** 2


@torch.no_grad()
def cached_targets(teachers: Teachers, images: torch.Tensor, temperature: float, bf16: bool,
                   batch: int = 512) -> torch.Tensor:
    """The teachers' targets for each uint8 image (N, 1, 48, 48), the mean of the image's and
    its mirror's: a student that flips its inputs at random then learns one target per face."""
    out = []
    for start in range(0, len(images), batch):
        x = images[start:start + batch].float().div_(255)
        x = x.contiguous(memory_format=torch.channels_last)
        mirror = x.flip(3).contiguous(memory_format=torch.channels_last)
        out.append((teachers.soft_targets(x, temperature, bf16)
                    + teachers.soft_targets(mirror, temperature, bf16)) / 2)
    return torch.cat(out)


def teachers_digest(teachers: Teachers) -> str:
    """What the teachers are, for a cache key: each ONNX teacher's file bytes and each torch
    teacher's weights, so a retrained or swapped teacher never reuses old targets."""
    h = hashlib.sha256()
    for model in teachers.models:
        if isinstance(model, OnnxTeacher):
            h.update(cache.file_digest(model.recognizer.path).encode())
            continue
        for name, tensor in model.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()


def stored_targets(teachers: Teachers, images: torch.Tensor, temperature: float, bf16: bool
                   ) -> tuple[torch.Tensor, bool]:
    """:func:`cached_targets`, kept on disk in fercnn's cache folder keyed by the teachers,
    the images, the temperature and the precision: a resumed run, or another student of the
    same teachers, reads them instead of running the teachers again (826 s for two vgg-s
    teachers on an AVX2 host). True when they were read."""
    h = hashlib.sha256(f"{teachers_digest(teachers)} {temperature!r} {bf16}".encode())
    h.update(images.detach().cpu().contiguous().numpy().tobytes())
    key = "targets-" + h.hexdigest()
    stored = cache.load_arrays(key, required=("targets",))
    if stored is not None:  # the key holds the images, so the targets are theirs
        return torch.from_numpy(stored["targets"]).to(images.device), True
    taught = cached_targets(teachers, images, temperature, bf16)
    cache.save_arrays(key, {"targets": taught.cpu().numpy()})
    return taught, False
