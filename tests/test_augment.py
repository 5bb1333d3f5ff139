"""Batched augmentations: shapes, identity settings, reproducibility, and what they change."""

import pytest
import torch

from fercnn.training.augment import random_affine, random_erasing, random_hflip, random_shift


def batch() -> torch.Tensor:
    return torch.rand(16, 1, 48, 48, generator=torch.Generator().manual_seed(0))


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_zero_strength_is_the_identity():
    x = batch()
    assert torch.allclose(random_affine(x, 0, 0, 0, gen()), x, atol=1e-5)
    assert torch.equal(random_erasing(x, 0.0, gen()), x)
    assert torch.equal(random_shift(x, 0, gen()), x)


def test_same_generator_seed_same_result():
    x = batch()
    for fn in (lambda g: random_affine(x, 10, 0.1, 4, g), lambda g: random_erasing(x, 0.5, g),
               lambda g: random_hflip(x, g), lambda g: random_shift(x, 3, g)):
        a, b = fn(gen(7)), fn(gen(7))
        assert a.shape == x.shape and torch.equal(a, b)


def test_turn_of_zero_degrees_is_the_plain_affine_map():
    x = batch()
    assert torch.allclose(random_affine(x, 10, 0.1, 4, gen(), turn=1e-9),
                          random_affine(x, 10, 0.1, 4, gen()), atol=1e-4)


def test_turn_shows_a_tilted_face_in_perspective():
    # a vertical bar over the whole height: a face turned up or down brings its top or its
    # bottom nearer, so the bar grows wider at one end than at the other, either way
    x = torch.zeros(64, 1, 48, 48)
    x[:, :, :, 16:32] = 1
    y = random_affine(x, 0, 0, 0, gen(), turn=30)
    top, bottom = (y[:, 0, rows].mean(dim=(1, 2)) for rows in (slice(2, 6), slice(42, 46)))
    wider_top = (top - bottom) > 0.01
    wider_bottom = (bottom - top) > 0.01
    assert wider_top.sum() > 10 and wider_bottom.sum() > 10
    assert torch.equal(y, random_affine(x, 0, 0, 0, gen(), turn=30))


def test_a_turn_past_what_a_face_shows_is_a_config_mistake():
    from fercnn.errors import FercnnError
    from fercnn.training.config import config_from_dict

    assert config_from_dict({"turn": 25}).turn == 25.0
    with pytest.raises(FercnnError, match="turn must be in"):
        config_from_dict({"turn": 90})


def test_flip_mirrors_some_images_exactly():
    x = batch()
    y = random_hflip(x, gen())
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(y[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < len(x)


def test_shift_moves_content_by_whole_pixels():
    x = torch.zeros(64, 1, 48, 48)
    x[:, :, 24, 24] = 1
    y = random_shift(x, 3, gen())
    positions = y[:, 0].flatten(1).argmax(1)
    rows, cols = positions // 48, positions % 48
    assert ((rows - 24).abs() <= 3).all() and ((cols - 24).abs() <= 3).all()
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5


def test_erasing_blanks_one_rectangle_in_about_the_asked_share():
    x = torch.zeros(400, 1, 48, 48)
    y = random_erasing(x, 0.5, gen())
    changed = (y != 0).flatten(1).any(1)
    assert 0.4 < changed.float().mean() < 0.6
    area = (y != 0).flatten(1).float().mean(1)[changed]
    assert (area <= 0.2 + 1e-6).all()


def test_photo_degradations_touch_only_their_share_and_stay_in_range():
    from fercnn.training.augment import photo_degrade

    x = torch.rand(64, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    y = photo_degrade(x, 0.5, torch.Generator().manual_seed(2))
    changed = (y != x).flatten(1).any(1)
    assert 16 <= int(changed.sum()) <= 48  # about half of the batch
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    again = photo_degrade(x, 0.5, torch.Generator().manual_seed(2))
    assert torch.equal(y, again)  # the generator decides everything
    assert torch.equal(photo_degrade(x, 0.0, torch.Generator().manual_seed(2)), x)


def test_border_repeats_the_new_edge_into_the_cut_and_keeps_the_rest():
    from fercnn.training.augment import random_border

    x = torch.rand(32, 1, 48, 48, generator=torch.Generator().manual_seed(3))
    y = random_border(x, torch.Generator().manual_seed(4), most=0.2)
    assert y.shape == x.shape
    cut = 0
    for a, b in zip(x[:, 0], y[:, 0], strict=True):
        kept = (a == b).nonzero()
        r0, r1 = int(kept[:, 0].min()), int(kept[:, 0].max())
        c0, c1 = int(kept[:, 1].min()), int(kept[:, 1].max())
        cut += (r0, r1, c0, c1) != (0, 47, 0, 47)
        assert r0 <= 9 and r1 >= 38 and c0 <= 9 and c1 >= 38  # at most 20% per side
        # inside the kept rectangle the image is untouched; outside it every pixel repeats
        # the nearest kept one
        rows = torch.arange(48).clamp(r0, r1)
        cols = torch.arange(48).clamp(c0, c1)
        assert torch.equal(b, a[rows][:, cols])
    assert 16 <= cut <= 32  # each side cut with even odds: most images lose some edge
