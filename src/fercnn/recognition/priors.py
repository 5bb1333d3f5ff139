"""How often each expression is shown, and a model's probabilities moved from the mix it was
trained on to another (a label-shift correction, Saerens et al., Neural Computation 2002).

Every model here learnt FER-2013's Training mix, gathered by searching the web for emotion
words: a seventh of its faces are afraid and a sixth sad. In the photos people take, most faces
are happy or neutral. A classifier's probability is proportional to the likelihood of the face
times the class's share in training, so dividing by the training shares and multiplying by the
photos' shares gives the probabilities that mix calls for, with no retraining. On wild-dev this
reads neutral faces as neutral far more often, and fear, which the models answer for photos
where it is almost never right, all but disappears; per-class recall of the rare classes falls
with it, so it is a choice (``prior="photos"``), not the default
(benchmarks/results/prior_choice.md, docs/recognition.md).

The correction is only as good as the probabilities it moves, and label smoothing leaves the
models under-confident. So a model that carries a :class:`Calibration` (bias-corrected
temperature scaling fitted on PublicTest, Alexandari et al., ICML 2020; ``fercnn calibrate``)
is calibrated first; the bundled ones do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import FercnnError

# faces per class in FER-2013's Training split (28,709), the mix every model here learnt
FER2013_TRAINING = {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "sad": 4830,
                    "surprise": 3171, "neutral": 4965}
# AffectNet's manually annotated training set (Mollahosseini, Hasani and Mahoor, IEEE Trans.
# Affective Computing 2017): web photos found for emotion words in six languages and labelled
# by twelve annotators, 283,901 faces of these seven classes (its contempt class left out).
# Only these published counts are used, no AffectNet image or model.
AFFECTNET = {"angry": 24882, "disgust": 3803, "fear": 6378, "happy": 134415, "sad": 25459,
             "surprise": 14090, "neutral": 74874}
PRIORS = {"fer2013": FER2013_TRAINING, "photos": AFFECTNET}
TRAINED_ON = "fer2013"


def check_prior(name: str) -> str:
    """``name`` if it is one of PRIORS, else a one-line error."""
    if name not in PRIORS:
        raise FercnnError(f"unknown prior {name!r}: choose one of {', '.join(PRIORS)}")
    return name


@lru_cache(maxsize=8)
def prior_weights(name: str, classes: tuple[str, ...]) -> np.ndarray | None:
    """Per class (in ``classes``' order), the factor that moves a probability from FER-2013's
    Training mix to the ``name`` mix; None for FER-2013's own, which changes nothing. Cached
    (and read-only): every ``Recognizer.predict`` asks for it, and building it took 6 us, a
    twentieth of a tiny model's one-face call."""
    if check_prior(name) == TRAINED_ON:
        return None
    shares = [_shares(PRIORS[name], classes), _shares(PRIORS[TRAINED_ON], classes)]
    weights = (shares[0] / shares[1]).astype(np.float32)
    weights.flags.writeable = False
    return weights


@dataclass(frozen=True)
class Calibration:
    """Bias-corrected temperature scaling: calibrated log-probabilities are the model's times
    ``scale`` plus a ``bias`` per class, fitted on PublicTest where the model's class mix is
    its training mix (``fercnn calibrate``; metadata key ``calibration``)."""

    scale: float
    bias: np.ndarray  # per class, in the model's class order

    @classmethod
    def from_metadata(cls, entry: Mapping | None, classes: Sequence[str]) -> Calibration | None:
        """The model file's calibration (None where it has none); one for other classes than
        the model's is a one-line error."""
        if not entry:
            return None
        bias = entry.get("bias", {})
        if set(bias) != set(classes):
            raise FercnnError(f"the model's calibration is for the classes {', '.join(bias)}, "
                              f"not its own ({', '.join(classes)})")
        try:
            return cls(float(entry["scale"]), np.array([bias[c] for c in classes], np.float32))
        except (KeyError, TypeError, ValueError) as e:
            raise FercnnError(f"the model's calibration is unreadable ({e!r}): fit it again "
                              "with fercnn calibrate") from None

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        logits = np.log(np.maximum(probabilities, 1e-12)) * np.float32(self.scale) + self.bias
        logits -= logits.max(axis=-1, keepdims=True)
        calibrated = np.exp(logits)
        return calibrated / calibrated.sum(axis=-1, keepdims=True)


def shift_prior(probabilities: np.ndarray, weights: np.ndarray | None,
                calibration: Calibration | None = None) -> np.ndarray:
    """Rows of probabilities (calibrated first, with a ``calibration``) times ``weights`` (from
    :func:`prior_weights`), summing to one again; unchanged for None weights, since the
    calibration only serves the shift (on FER-2013 the models' own answers are kept)."""
    if weights is None:
        return probabilities
    if calibration is not None:
        probabilities = calibration.apply(probabilities)
    shifted = probabilities * weights
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _shares(counts: dict[str, int], classes: Sequence[str]) -> np.ndarray:
    missing = [c for c in classes if c not in counts]
    if missing:
        raise FercnnError(f"no prior for the classes {', '.join(missing)}")
    share = np.array([counts[c] for c in classes], dtype=np.float64)
    return share / share.sum()
