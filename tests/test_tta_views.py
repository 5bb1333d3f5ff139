"""benchmarks/tta_views.py: its "shifts" set is exactly `fercnn evaluate --tta`'s ten views."""

from __future__ import annotations

import numpy as np

from fercnn.tta import tta_views

from .conftest import load_benchmark


def test_the_shifts_set_is_the_evaluate_tta_views():
    bench = load_benchmark("tta_views")
    faces = np.random.default_rng(10).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    ours = []
    for settings in bench.view_sets()["shifts"]:
        shifted = bench.view(faces, **settings)
        ours += [shifted.tobytes(), shifted[:, :, ::-1].tobytes()]
    assert sorted(ours) == sorted(v.tobytes() for v in tta_views(faces))


def test_zoom_and_rotation_views_keep_the_face_centred():
    bench = load_benchmark("tta_views")
    face = np.zeros((1, 48, 48), np.uint8)
    face[0, 20:28, 20:28] = 255  # a bright square at the centre
    for settings in ({"zoom": 0.9}, {"zoom": 1.1}, {"angle": 5}):
        out = bench.view(face, **settings)[0].astype(float)
        rows, cols = np.nonzero(out)
        weights = out[rows, cols]
        centre = np.average(rows, weights=weights), np.average(cols, weights=weights)
        # about pixel 23.5, the middle of 48: about 24 would move it by 0.05
        assert np.allclose(centre, 23.5, atol=0.01), (settings, centre)
    assert bench.view(face, zoom=1.1)[0].astype(bool).sum() > face.astype(bool).sum()
