"""Preprocessing against the official pipeline (PIL bilinear resize, ToTensor, Normalize)."""
import os

import cv2
import numpy as np
import pytest
from optional_imports import import_or_skip

from jist_edge.errors import BadFrame
from jist_edge.encoder.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessor, choose_interpolation

Image = import_or_skip("PIL.Image")
matplotlib = import_or_skip("matplotlib")

SAMPLE_DIR = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data")
PHOTOS = ["grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"]  # real photographs shipped with matplotlib


def _photo(name):
    path = os.path.join(SAMPLE_DIR, name)
    if not os.path.exists(path):
        pytest.skip("sample photo {} not shipped with this matplotlib".format(name))
    return np.asarray(Image.open(path).convert("RGB"))


def _reference(rgb, height, width):
    """The official transform, in float64: PIL bilinear resize, /255, ImageNet normalize, CHW."""
    img = Image.fromarray(rgb)
    if img.size != (width, height):
        img = img.resize((width, height), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float64) / 255.0
    x = (x - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    return x.transpose(2, 0, 1)


def _pixel_error(rgb, size, interpolation):
    h, w = size
    ref = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR), dtype=np.float32)
    out = cv2.resize(rgb, (w, h), interpolation=interpolation).astype(np.float32)
    return float(np.abs(out - ref).mean())


def test_no_resize_matches_reference_exactly():
    rgb = _photo("grace_hopper.jpg")
    pre = Preprocessor(rgb.shape[0], rgb.shape[1])
    out = pre(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert out.dtype == np.float32 and out.shape == (3,) + rgb.shape[:2]
    assert np.abs(out - _reference(rgb, *rgb.shape[:2])).max() < 1e-5


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize("factor", [0.8, 0.667, 0.333])
def test_area_is_closest_to_pil_when_shrinking(photo, factor):
    rgb = _photo(photo)
    size = (int(rgb.shape[0] * factor), int(rgb.shape[1] * factor))
    errors = {
        name: _pixel_error(rgb, size, interp)
        for name, interp in [("area", cv2.INTER_AREA), ("linear", cv2.INTER_LINEAR), ("cubic", cv2.INTER_CUBIC)]
    }
    assert choose_interpolation(rgb.shape[:2], size) == cv2.INTER_AREA
    assert errors["area"] == min(errors.values()), errors
    assert errors["area"] < 3.0  # mean absolute difference in 8-bit levels


@pytest.mark.parametrize("photo", PHOTOS)
def test_linear_is_closest_to_pil_when_enlarging(photo):
    rgb = _photo(photo)
    size = (int(rgb.shape[0] * 1.5), int(rgb.shape[1] * 1.5))
    linear = _pixel_error(rgb, size, cv2.INTER_LINEAR)
    assert choose_interpolation(rgb.shape[:2], size) == cv2.INTER_LINEAR
    assert linear < _pixel_error(rgb, size, cv2.INTER_AREA)
    assert linear < 0.5


def test_resized_frame_close_to_reference_after_normalization():
    rgb = _photo("grace_hopper.jpg")
    pre = Preprocessor(400, 340)
    out = pre(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    diff = np.abs(out - _reference(rgb, 400, 340))
    # normalized units: one 8-bit level is about 0.017
    assert diff.mean() < 0.02


def test_batch_and_channel_order():
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[..., 2] = 255  # pure red in BGR
    pre = Preprocessor(10, 15)
    batch = pre.batch([frame, frame])
    assert batch.shape == (2, 3, 10, 15) and batch.flags["C_CONTIGUOUS"]
    red = (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert np.allclose(batch[:, 0], red, atol=1e-5)
    assert np.allclose(batch[:, 1], -IMAGENET_MEAN[1] / IMAGENET_STD[1], atol=1e-5)


@pytest.mark.parametrize(
    "frame",
    [None, np.zeros((0, 0, 3), np.uint8), np.zeros((1, 50, 3), np.uint8), np.zeros((20, 20), np.uint8),
     np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20, 3), np.float32)],
)
def test_bad_frames_are_refused(frame):
    with pytest.raises(BadFrame):
        Preprocessor(10, 10)(frame)


def test_out_buffer_is_filled_in_place_and_equals_a_fresh_result():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    pre = Preprocessor(24, 32)
    buf = np.full((3, 24, 32), np.nan, np.float32)
    assert pre(frame, out=buf) is buf
    fresh = pre(frame)
    assert fresh is not buf and np.array_equal(fresh, buf)
    # and the fast path equals the straightforward formula
    rgb = cv2.cvtColor(cv2.resize(frame, (32, 24), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    ref = ((rgb / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).transpose(2, 0, 1)
    assert np.abs(fresh - ref).max() < 1e-5
