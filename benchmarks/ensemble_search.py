"""Choose ensemble members on PublicTest: the accuracy of every subset of the given runs.

    python benchmarks/ensemble_search.py --runs DIR RUN [RUN ...] [--tta] [--data CSV]

Each run's PublicTest probabilities are computed once; every subset of them (single runs
included) is scored by averaging them, best first. PrivateTest is never read here, so the
chosen ensemble can then be reported on it once (``fercnn evaluate RUN1 RUN2 ... --split
PrivateTest``).
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

import numpy as np

from fercnn.checkpoint import load_checkpoint
from fercnn.data import load_dataset
from fercnn.errors import FercnnError
from fercnn.evaluate import checkpoint_probabilities
from fercnn.metrics import classification_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", metavar="RUN", help="run folders under --runs")
    parser.add_argument("--runs", required=True, help="folder holding the run folders")
    parser.add_argument("--data", help="FER-2013 CSV (default $FERCNN_DATA)")
    parser.add_argument("--tta", action="store_true", help="ten-view test-time augmentation")
    args = parser.parse_args()
    public = load_dataset(args.data).split("PublicTest")
    probabilities = {}
    for name in args.names:
        probabilities[name] = checkpoint_probabilities(
            load_checkpoint(Path(args.runs) / name), public.images, args.tta)[0]
    scores = []
    for size in range(1, len(args.names) + 1):
        for members in combinations(args.names, size):
            p = np.mean([probabilities[m] for m in members], axis=0)
            scores.append((classification_metrics(p, public.labels)["accuracy"], members))
    print(f"PublicTest accuracy{' with TTA' if args.tta else ''}, best first:")
    for accuracy, members in sorted(scores, reverse=True):
        print(f"{accuracy:.2%}  {' + '.join(members)}")


if __name__ == "__main__":
    try:
        main()
    except FercnnError as e:
        raise SystemExit(f"ensemble_search: error: {e}") from None
