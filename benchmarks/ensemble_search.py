"""Choose ensemble members on PublicTest: the accuracy of every subset of the given models.

    python benchmarks/ensemble_search.py --runs DIR MODEL [MODEL ...] [--tta] [--data CSV]
        [--ferplus CSV [--ferplus-rule majority]]

A model is a run folder under DIR or, as in ``fercnn evaluate``, an exported ONNX model (a
``.onnx`` file or a bundled name: ``default``, ``accurate``), so that new runs can be tried
beside the bundled ensemble. Each model's PublicTest probabilities are computed once; every
subset of them (single models included) is scored by averaging them, best first. PrivateTest
is never read here, so the chosen ensemble can then be reported on it once (``fercnn evaluate
RUN1 RUN2 ... --split PrivateTest``). As in ``fercnn evaluate``, runs trained on FER+ are
scored against the FER+ labels (the first run's FER+ file unless ``--ferplus`` names one; ONNX
models carry no training config, so a list of them alone is scored on FER-2013 labels unless
``--ferplus`` is given), the most-voted class unless ``--ferplus-rule majority`` asks for the
FER+ authors' test protocol (``fercnn.data.ferplus``).
"""

from __future__ import annotations

import argparse
from itertools import combinations

import numpy as np

from fercnn.data import load_dataset
from fercnn.data.ferplus import RULES
from fercnn.errors import FercnnError
from fercnn.evaluate import first_run_config, model_probabilities, read_checkpoints
from fercnn.metrics import classification_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", metavar="MODEL",
                        help="run folders under --runs, or exported ONNX models")
    parser.add_argument("--runs", required=True, help="folder holding the run folders")
    parser.add_argument("--data", help="FER-2013 CSV (default $FERCNN_DATA)")
    parser.add_argument("--tta", action="store_true", help="ten-view test-time augmentation")
    parser.add_argument("--ferplus", help="score against this FER+ file's labels "
                        "(default: the one the first run was trained with, if any)")
    parser.add_argument("--ferplus-rule", choices=RULES, default="plurality",
                        help="the FER+ label of a face (see fercnn.data.ferplus)")
    args = parser.parse_args()
    checkpoints = read_checkpoints(args.names, args.runs)
    ferplus = args.ferplus or first_run_config(checkpoints).get("ferplus")
    if args.ferplus_rule != "plurality" and not ferplus:
        raise FercnnError(f"the FER+ {args.ferplus_rule} rule needs FER+ labels: pass --ferplus")
    public = load_dataset(args.data, ferplus=ferplus,
                          ferplus_rule=args.ferplus_rule).split("PublicTest")
    probabilities = {name: model_probabilities(name, public.images, args.tta,
                                               checkpoints.get(name))[0]
                     for name in args.names}
    scores = []
    for size in range(1, len(args.names) + 1):
        for members in combinations(args.names, size):
            p = np.mean([probabilities[m] for m in members], axis=0)
            scores.append((classification_metrics(p, public.labels)["accuracy"], members))
    labels = f"FER+ {args.ferplus_rule}" if ferplus else "FER-2013"
    print(f"PublicTest accuracy ({labels} labels){' with TTA' if args.tta else ''}, best first:")
    for accuracy, members in sorted(scores, reverse=True):
        print(f"{accuracy:.2%}  {' + '.join(members)}")


if __name__ == "__main__":
    try:
        main()
    except FercnnError as e:
        raise SystemExit(f"ensemble_search: error: {e}") from None
