import math

import numpy as np
import pytest

from keras_longtail.data import synthetic_depth_scenes


def _arrays(**kwargs):
    pairs = list(synthetic_depth_scenes(**kwargs).as_numpy_iterator())
    return np.stack([p[0] for p in pairs]), np.stack([p[1][..., 0] for p in pairs])


def test_shapes_ranges_and_determinism():
    images, depths = _arrays(num_scenes=4, image_size=(64, 160), seed=3)
    assert images.shape == (4, 64, 160, 3) and images.dtype == np.float32
    assert depths.shape == (4, 64, 160) and depths.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert depths.min() == 0.0 and 0.0 < depths.max() <= 80.0
    again_images, again_depths = _arrays(num_scenes=4, image_size=(64, 160), seed=3)
    np.testing.assert_array_equal(images, again_images)
    np.testing.assert_array_equal(depths, again_depths)
    _, other = _arrays(num_scenes=4, image_size=(64, 160), seed=4)
    assert not np.array_equal(depths, other)


def test_road_is_a_plane_below_a_pinhole_camera():
    """Road pixel (row v) has depth f·h/(v + 0.5 − v0): f = (W/2)/tan(25°), h = 1.6 m, v0 the scene's horizon."""
    height, width = 96, 240
    focal = (width / 2) / math.tan(math.radians(25.0))
    _, depths = _arrays(num_scenes=6, image_size=(height, width), row_spacing=1)
    for depth in depths:
        rows, cols = np.nonzero(depth[-15:])
        rows = rows + height - 15
        horizon = rows + 0.5 - focal * 1.6 / depth[rows, cols]
        # Most of the bottom rows are road (boxes may cover some); they agree on one horizon.
        agree = np.abs(horizon - np.median(horizon)) < 1e-3
        assert agree.mean() > 0.5
        assert 0.4 * height <= np.median(horizon) <= 0.5 * height


def test_lidar_mask_is_scanlines_within_range():
    _, depths = _arrays(num_scenes=4, image_size=(64, 160), row_spacing=4, max_range=50.0)
    assert depths.max() <= 50.0
    for depth in depths:
        rows = np.unique(np.nonzero(depth)[0])
        assert len(np.unique(rows % 4)) == 1  # one scanline phase per scene
        assert 0.05 < (depth > 0).mean() < 0.25


def test_far_depths_are_rare_and_come_from_far_scenes():
    _, near_only = _arrays(num_scenes=8, image_size=(96, 240), far_probability=0.0)
    assert near_only.max() <= 45.0  # buildings at 22-45 m close the road
    _, all_far = _arrays(num_scenes=8, image_size=(96, 240), far_probability=1.0)
    assert (all_far > 45).sum() > 0.05 * (all_far > 0).sum()
    _, default = _arrays(num_scenes=24, image_size=(96, 240))
    valid = default[default > 0]
    near, far = (valid < 20).mean(), (valid >= 60).mean()
    assert far < near / 5  # the far bin is the long tail


@pytest.mark.parametrize("kwargs, argument", [
    ({"num_scenes": 0}, "num_scenes"),
    ({"image_size": (4, 100)}, "image_size"),
    ({"image_size": 96}, "image_size"),
    ({"far_probability": 1.5}, "far_probability"),
    ({"row_spacing": 0}, "row_spacing"),
    ({"max_range": 0.0}, "max_range"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        synthetic_depth_scenes(**kwargs)
