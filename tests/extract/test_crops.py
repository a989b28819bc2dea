"""Resize and the 1/5/10-crop order (TL, TR, BL, BR, C, then the same on the flipped frame)."""

from __future__ import annotations

import numpy as np
import pytest

from wsvad.extract.crops import (
    crop_order,
    crop_positions,
    make_crops,
    resize_and_crop,
    resize_frames,
    resized_shape,
)


def marked_frame(height=40, width=60, size=20) -> np.ndarray:
    """A dark frame whose corners and centre carry distinct colours, plus a left/right asymmetric
    dot."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:3, :3] = (255, 0, 0)  # TL red
    frame[:3, -3:] = (0, 255, 0)  # TR green
    frame[-3:, :3] = (0, 0, 255)  # BL blue
    frame[-3:, -3:] = (255, 255, 0)  # BR yellow
    frame[height // 2, width // 2] = (7, 7, 7)  # centre
    return frame


def test_crop_order_names():
    assert crop_order(1) == ["C"]
    assert crop_order(5) == ["TL", "TR", "BL", "BR", "C"]
    assert crop_order(10)[5:] == ["flip-TL", "flip-TR", "flip-BL", "flip-BR", "flip-C"]
    with pytest.raises(ValueError, match="crops must be 1, 5 or 10, got 3"):
        crop_order(3)


def test_ten_crops_follow_the_documented_order():
    crops = make_crops(marked_frame()[None], 20, 10)[0]  # (10, S, S, 3)
    assert crops.shape == (10, 20, 20, 3)
    red, green, blue, yellow = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
    assert tuple(crops[0, 0, 0]) == red and tuple(crops[1, 0, -1]) == green
    assert tuple(crops[2, -1, 0]) == blue and tuple(crops[3, -1, -1]) == yellow
    assert tuple(crops[4, 10, 10]) == (7, 7, 7)  # centre crop at (10, 20): the marked centre pixel
    # flipped frame: its top-left shows the original top-right corner, mirrored
    assert tuple(crops[5, 0, 0]) == green and tuple(crops[6, 0, -1]) == red
    assert tuple(crops[7, -1, 0]) == yellow and tuple(crops[8, -1, -1]) == blue
    np.testing.assert_array_equal(crops[9], marked_frame()[:, ::-1][10:30, 20:40])
    np.testing.assert_array_equal(make_crops(marked_frame()[None], 20, 5)[0], crops[:5])
    np.testing.assert_array_equal(make_crops(marked_frame()[None], 20, 1)[0, 0], crops[4])


def test_centre_rounds_like_torchvision():
    # 341 - 224 = 117 -> 58.5 rounds half to even (58); 35 - 20 = 15 -> 7.5 -> 8
    assert crop_positions(256, 341, 224)[4] == (16, 58)
    assert crop_positions(35, 35, 20)[4] == (8, 8)
    with pytest.raises(ValueError, match="frame 30x40 is smaller than the 224x224 crop"):
        crop_positions(40, 30, 224)


def test_resized_shape_rules():
    assert resized_shape(240, 320, "short256") == (256, 341)  # torchvision Resize(256) truncates
    assert resized_shape(320, 240, "short256") == (341, 256)
    assert resized_shape(1080, 1920, "340x256") == (256, 340)
    with pytest.raises(ValueError, match="expected 'short<N>'"):
        resized_shape(10, 10, "half")


def test_resize_keeps_flat_images_and_matches_pil_antialias():
    from PIL import Image

    flat = np.full((2, 48, 64, 3), 93, np.uint8)
    assert (resize_frames(flat, (24, 32)) == 93).all()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    ours = resize_frames(image[None], (60, 80))[0].astype(int)
    pil = np.asarray(Image.fromarray(image).resize((80, 60), Image.BILINEAR)).astype(int)
    assert np.abs(ours - pil).max() <= 2  # both antialias when shrinking; rounding differs slightly


def test_resize_and_crop_end_to_end_shape_and_centre():
    frames = np.stack([marked_frame(48, 64)] * 3)
    out = resize_and_crop(frames, "short96", 96, 10)
    assert out.shape == (3, 10, 96, 96, 3) and out.dtype == np.uint8
    assert out[0, 0, 0, 0, 0] > 128 and out[0, 5, 0, 0, 1] > 128  # red TL, green (flipped) TL


@pytest.mark.parametrize("n_crops", [1, 5, 10])
def test_crop_batch_copies_each_crop_once_in_the_order_of_make_crops(n_crops):
    from wsvad.extract.crops import crop_batch, crop_views

    rng = np.random.default_rng(n_crops)
    snippets = [rng.integers(0, 256, (4, 30, 41, 3), dtype=np.uint8) for _ in range(3)]
    batch = crop_batch(snippets, 20, n_crops)
    assert batch.shape == (3 * n_crops, 4, 20, 20, 3) and batch.flags.c_contiguous
    for j, snippet in enumerate(snippets):
        per_frame = make_crops(snippet, 20, n_crops)  # (L, C, S, S, 3)
        np.testing.assert_array_equal(
            batch[j * n_crops : (j + 1) * n_crops], per_frame.transpose(1, 0, 2, 3, 4)
        )
    views = crop_views(snippets[0], 20, n_crops)
    assert all(np.shares_memory(view, snippets[0]) for view in views)  # views, not copies
