"""The notebook's own framework on this machine: Keras 3 training images/s for the shallow and
deep seed models, mixed bf16 and fp32, on in-memory data.

Runs in an interpreter that has TensorFlow (not a fercnn dependency), usually called by
``train_speed.py --keras-python PATH`` so both frameworks are measured in one run:

    python -m venv /tmp/tf && /tmp/tf/bin/pip install "tensorflow-cpu==2.21.*"
    /tmp/tf/bin/python benchmarks/keras_baseline.py [--seconds 8]

Prints one JSON object: {"tensorflow": version, "keras": version, "cpus": count, "rows": [...]}.
The models are the notebook's, layer for layer (Keras defaults, Adam 1e-3, batch 64).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def shallow(keras):
    layers = keras.layers
    return keras.Sequential([
        keras.Input((48, 48, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2), layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(1024, activation="relu"), layers.Dense(7, activation="softmax")])


def deep(keras):
    layers = keras.layers
    stack = [keras.Input((48, 48, 1))]
    for filters, kernel, repeats in ((64, 3, 2), (128, 5, 3), (512, 3, 4), (512, 3, 4)):
        for _ in range(repeats):
            stack += [layers.Conv2D(filters, kernel, padding="same", activation="relu"),
                      layers.BatchNormalization()]
        stack += [layers.MaxPooling2D(2), layers.Dropout(0.3)]
    stack += [layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dropout(0.3),
              layers.Dense(7, activation="softmax")]
    return keras.Sequential(stack)


def images_per_second(keras, np, build, seconds: float, batch: int = 64, repeats: int = 3
                      ) -> float:
    """Steady-state training speed: batches timed inside ``fit`` by a callback, the median of
    ``repeats`` runs. Timing whole ``fit`` calls charged Keras for a stall of about 2 s that
    most calls spend after the last batch (TensorFlow 2.21 on a 2-core host), which made
    its figures bimodal and too low by up to 40% in an 8-second run."""
    model = build(keras)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)

    class BatchClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, step, logs=None):
            self.ends.append(time.perf_counter())

    def run(n: int) -> float:
        x = rng.random((n, 48, 48, 1), dtype=np.float32)
        y = rng.integers(0, 7, n)
        clock = BatchClock()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False,
                  callbacks=[clock])
        return (len(clock.ends) - 1) * batch / (clock.ends[-1] - clock.ends[0])

    run(4 * batch)  # tracing and compilation
    probe = run(4 * batch)
    steps = max(4, round(probe * seconds / repeats / batch))
    return float(np.median([run(steps * batch) for _ in range(repeats)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per row")
    args = parser.parse_args()
    import keras
    import numpy as np
    import tensorflow as tf

    rows = []
    for precision, policy in (("bf16", "mixed_bfloat16"), ("fp32", "float32")):
        keras.mixed_precision.set_global_policy(policy)
        for name, build in (("shallow", shallow), ("deep", deep)):
            speed = images_per_second(keras, np, build, args.seconds)
            rows.append({"model": name, "precision": precision, "images_per_s": round(speed, 1)})
    print(json.dumps({"tensorflow": tf.__version__, "keras": keras.__version__,
                      "cpus": os.cpu_count(), "rows": rows}))


if __name__ == "__main__":
    main()
