"""Shrinking by halvings: exact sizes, area averaging (no aliasing), flat stays flat."""

from __future__ import annotations

import numpy as np

from fercnn.recognition.scaling import halve, halvings, rescale


def test_halvings_counts_whole_halvings():
    assert [halvings(s) for s in (1.0, 1.9, 2.0, 3.99, 4.0, 33.0)] == [0, 0, 1, 1, 2, 5]


def test_halve_averages_blocks_and_drops_an_odd_edge():
    image = np.arange(5 * 7, dtype=np.uint8).reshape(5, 7) * 4
    half = halve(image, 1)
    assert half.shape == (2, 3)
    assert half[0, 0] == np.mean(image[:2, :2])
    assert half[1, 2] == np.mean(image[2:4, 4:6])


def test_rescale_gives_the_exact_size_without_aliasing():
    """A one-pixel checkerboard shrunk 6.4x: area averaging gives flat gray; sampling without
    a prefilter (bilinear straight to size) would keep black and white pixels."""
    board = (np.indices((640, 480)).sum(axis=0) % 2 * 255).astype(np.uint8).T
    small = rescale(board, (75, 100))
    assert small.shape == (100, 75)
    assert np.abs(small.astype(int) - 128).max() <= 2


def test_rescale_enlarges_and_leaves_the_same_size_alone():
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert rescale(image, (30, 20)) is image
    assert rescale(image, (60, 40)).shape == (40, 60, 3)
